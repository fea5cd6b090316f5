"""The run record every stage writes and reads (`pcopilot_config.yaml`), and files that honour the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from personal_copilot.adapters.outputs import staged_output
from personal_copilot.configs import EvalRows, RunRecord, read_run_record, write_atomic, write_run_config
from personal_copilot.errors import PcopilotError


def test_a_record_reads_back_as_written(tmp_path: Path) -> None:
    rows = EvalRows(fim={"rate": 0.5}, seq_len=64, seed=3, repo_context=False, eval_fraction=0.2)
    written = write_run_config(tmp_path, "train", {"model": "m"}, base_model="m", family="starcoder", eval_rows=rows)
    record = read_run_record(tmp_path)
    assert record == written and record.eval_rows == rows and record.versions["personal_copilot"]
    assert read_run_record(tmp_path / "nothing-here") is None
    (tmp_path / "pcopilot_config.yaml").write_text("- not a record\n")
    with pytest.raises(PcopilotError, match="is not a pcopilot run record"):
        read_run_record(tmp_path)


def test_unknown_fields_are_refused_when_written(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_run_config(tmp_path, "train", {}, base_modle="typo")
    assert RunRecord(stage="collect", config={}).data_splits == []


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_outputs_honour_the_umask(tmp_path: Path, umask_022) -> None:
    write_atomic(tmp_path / "a.yaml", "a: 1\n")
    assert stat.S_IMODE((tmp_path / "a.yaml").stat().st_mode) == 0o644
    with staged_output(tmp_path / "merged") as staging:
        (staging / "config.json").write_text("{}")
    assert stat.S_IMODE((tmp_path / "merged").stat().st_mode) == 0o755
