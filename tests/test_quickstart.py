"""The README's first command at test scale: `pcopilot quickstart --profile test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from personal_copilot.cli import main
from personal_copilot.quickstart import RECIPES, BaseModel, build_base, project_source
from personal_copilot.quickstart.base import recipe_key


@pytest.fixture(scope="session")
def built_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BaseModel]:
    """The test recipe's base, built once into a session cache directory."""
    cache = tmp_path_factory.mktemp("base-cache")
    return cache, build_base(RECIPES["test"], cache)


def test_quickstart_runs_the_loop_on_given_sources(built_base, tmp_path: Path, capsys) -> None:
    from tests.corpus import write_repositories

    (source,) = write_repositories(tmp_path / "code")[:1]
    out, cache = tmp_path / "qs", built_base[0]
    argv = ["quickstart", "--profile", "test", "--sources", str(source), "--output", str(out)]
    assert main([*argv, "--base_cache_dir", str(cache), "--workers", "1"]) == 0

    report = json.loads((out / "report.json").read_text())
    assert report["collect"]["files_kept"] == 12
    assert report["train"]["steps"] == 4 and report["train"]["eval_loss"] > 0
    assert Path(report["base"]["model_dir"]).is_relative_to(cache)
    assert (out / "run" / "adapter_model.safetensors").is_file()
    assert yaml.safe_load((out / "pcopilot_config.yaml").read_text())["stage"] == "quickstart"
    assert "pcopilot quickstart" in capsys.readouterr().out


def test_base_is_built_once_per_recipe(built_base) -> None:
    cache, first = built_base
    recipe = RECIPES["test"]
    again = build_base(recipe, cache)

    assert not first.reused and again.reused
    assert again.model_dir == first.model_dir == cache / recipe_key(recipe) / "run"
    assert (first.model_dir / "model.safetensors").is_file()
    assert first.general_split["eval_repos"] or first.general_split["eval_files"]


def test_default_source_is_this_project() -> None:
    assert (project_source() / "personal_copilot" / "collect" / "run.py").is_file()
