"""The README's first command, on a small source tree (the real one runs on this project's own code)."""

from __future__ import annotations

import json
from pathlib import Path

from personal_copilot.quickstart import QuickstartConfig, _project_source, run_quickstart


def test_quickstart_collects_the_source(make_repo, tmp_path: Path) -> None:
    source = make_repo("project", {"pkg/core.py": "def answer():\n    return 42\n", "notes.md": "# notes\n"})
    out = tmp_path / "qs"
    report = run_quickstart(QuickstartConfig(output=out, source=source, workers=1))

    assert report.exit_code == 0
    assert report.collect.files_kept == 1 and report.collect.dropped == {"not_code": 1}
    assert (out / "data" / "data").is_dir()
    assert json.loads((out / "report.json").read_text())["collect"]["files_kept"] == 1
    assert (out / "pcopilot_config.yaml").is_file()


def test_default_source_is_this_project() -> None:
    source = _project_source()
    assert (source / "personal_copilot" / "collect" / "run.py").is_file() or (source / "collect" / "run.py").is_file()
