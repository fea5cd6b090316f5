"""Settings of `pcopilot adapters` (NAME=PATH[:WEIGHT], errors that name the flag) and the output folder's life."""

from __future__ import annotations

from pathlib import Path

import pytest

from personal_copilot.adapters import CombineConfig, ScaleConfig, WeightedAdapter, parse_weighted_adapter
from personal_copilot.adapters.outputs import check_output, staged_output
from personal_copilot.errors import PcopilotError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("copilot=runs/copilot:0.8", WeightedAdapter("copilot", "runs/copilot", 0.8)),
        ("copilot=runs/copilot", WeightedAdapter("copilot", "runs/copilot", 1.0)),
        ("runs/assistant/:-0.5", WeightedAdapter("assistant", "runs/assistant/", -0.5)),
        ("a=C:/adapters/a", WeightedAdapter("a", "C:/adapters/a", 1.0)),  # a colon that is no weight
        ("a=x:1e-1", WeightedAdapter("a", "x", 0.1)),
    ],
)
def test_weighted_adapter_specs(spec: str, expected: WeightedAdapter) -> None:
    assert parse_weighted_adapter(spec) == expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"adapters": []}, "--adapters needs at least one"),
        ({"adapters": ["a=x:0"]}, "non-zero"),
        ({"adapters": ["a=x", "a=y"]}, "a appears more than once"),
        ({"adapters": ["a=x", "b=y"], "method": "ties"}, "--method ties needs --density"),
        ({"adapters": ["a=x"], "method": "dare_linear", "density": 1.5}, r"--density must be in \(0, 1\]"),
        ({"adapters": ["a=x"], "svd_rank": 0}, "--svd_rank must be >= 1"),
    ],
)
def test_invalid_combine_settings_name_the_flag(settings: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        CombineConfig(output=tmp_path, **settings)


def test_scale_weight_must_not_be_zero(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--weight must be a non-zero number"):
        ScaleConfig(adapter="x", weight=0.0, output=tmp_path)


def test_output_is_checked_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "adapter").mkdir()
    with pytest.raises(PcopilotError, match="is one of the inputs"):
        check_output(tmp_path / "adapter", True, [tmp_path / "adapter"])
    (tmp_path / "adapter" / "file").write_text("x")
    with pytest.raises(PcopilotError, match="--overwrite"):
        check_output(tmp_path / "adapter", False, [])
    check_output(tmp_path / "adapter", True, [])
    check_output(tmp_path / "new", False, [])


def test_a_failed_command_leaves_the_old_output_and_no_half_written_one(tmp_path: Path) -> None:
    output = tmp_path / "runs" / "merged"
    output.mkdir(parents=True)
    (output / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_output(output) as staging:
        (staging / "model.safetensors").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["merged"]
    assert [p.name for p in output.iterdir()] == ["old.txt"]

    with staged_output(output) as staging:
        (staging / "model.safetensors").write_text("whole")
    assert [p.name for p in output.iterdir()] == ["model.safetensors"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["merged"]
