"""End to end: `run_collect` on fixture repositories, read back with pyarrow and `datasets`."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from personal_copilot.collect import CollectConfig, FilterConfig, run_collect
from personal_copilot.collect.store import DATASET_SCHEMA
from tests.collect.conftest import (
    EXPECTED_DROPPED,
    EXPECTED_KEPT,
    FAKE_SECRETS,
    MAX_FILE_BYTES,
    OUTSIDE_CONTENT,
    module_source,
)
from tests.collect.test_interrupted import readable_text


def collect(sources: list[Path | str], out: Path, **overrides) -> tuple:
    config = CollectConfig(
        sources=[str(s) for s in sources],
        output=out,
        workers=overrides.pop("workers", 1),
        cache_dir=out.parent / "clones",
        filters=FilterConfig(max_file_bytes=MAX_FILE_BYTES),
        **overrides,
    )
    report = run_collect(config)
    table = pq.read_table(out / "data")
    return report, table


def rows_by_path(table) -> dict[tuple[str, str], dict]:
    return {(r["repo_id"], r["file_path"]): r for r in table.to_pylist()}


def test_every_filter_and_drop_reason(every_case_repo: Path, tmp_path: Path) -> None:
    report, table = collect([every_case_repo], tmp_path / "out")

    rows = rows_by_path(table)
    assert {path: row["language"] for (_, path), row in rows.items()} == EXPECTED_KEPT
    expected_reasons: dict[str, int] = {}
    for reason in EXPECTED_DROPPED.values():
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    assert report.dropped == dict(sorted(expected_reasons.items()))
    assert report.files_seen == len(EXPECTED_KEPT) + len(EXPECTED_DROPPED)
    assert report.files_kept == len(EXPECTED_KEPT) == table.num_rows
    assert report.exit_code == 0


def test_rows_carry_repo_metadata(every_case_repo: Path, tmp_path: Path) -> None:
    report, table = collect([every_case_repo], tmp_path / "out")

    assert table.schema == DATASET_SCHEMA
    commit = report.sources[0].commit
    assert len(commit) == 40
    for row in table.to_pylist():
        assert row["repo_id"] == "every-case"
        assert row["commit"] == commit
        assert row["num_bytes"] == len(row["content"].encode())
        assert not row["file_path"].startswith(("/", "./"))
    assert [(r["repo_id"], r["file_path"]) for r in table.to_pylist()] == sorted(rows_by_path(table))
    assert report.bytes_kept == report.sources[0].bytes_kept == sum(table.column("num_bytes").to_pylist())


def test_notebook_keeps_code_cells_only(every_case_repo: Path, tmp_path: Path) -> None:
    _, table = collect([every_case_repo], tmp_path / "out")

    content = rows_by_path(table)[("every-case", "analysis/good.ipynb")]["content"]
    assert content == "# %%\nimport numpy as np\nx = np.arange(3)\n\n# %%\nprint(x)\n"


def test_latin1_file_is_decoded(every_case_repo: Path, tmp_path: Path) -> None:
    _, table = collect([every_case_repo], tmp_path / "out")

    assert rows_by_path(table)[("every-case", "src/latin.py")]["content"] == "# Copyright café crème\nNAME = 'naïve'\n"


def test_secrets_never_reach_disk(every_case_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report, table = collect([every_case_repo], out)

    settings = rows_by_path(table)[("every-case", "src/settings.py")]["content"]
    assert 'AWS_KEY = "<SECRET:aws_access_key>"' in settings
    assert "postgresql://admin:<SECRET:basic_auth_credentials>@db.internal" in settings
    assert 'KEY = """<SECRET:private_key>"""' in settings
    assert report.secrets == {
        "aws_access_key": 1,
        "basic_auth_credentials": 1,
        "github_token": 1,
        "private_key": 1,
        "slack_token": 1,
    }
    written = "".join(readable_text(p) for p in out.rglob("*") if p.is_file())
    for secret in FAKE_SECRETS.values():
        assert secret not in written  # nor in the shards, the source cache or the reports


def test_fake_tokens_of_every_service_never_reach_disk(make_repo, tmp_path: Path) -> None:
    from tests.collect.fake_tokens import FAKE_TOKENS

    code = module_source("settings", functions=10)  # the tokens sit among ordinary code, as in a settings module
    files = {
        f"config/{kind}.py": "\n".join([code] + [line for line, _ in pairs]) for kind, pairs in FAKE_TOKENS.items()
    }
    out = tmp_path / "out"
    report, _ = collect([make_repo("team", files)], out)

    assert report.secrets == {kind: len(pairs) for kind, pairs in FAKE_TOKENS.items()}
    written = "".join(readable_text(p) for p in out.rglob("*") if p.is_file())
    assert [token for pairs in FAKE_TOKENS.values() for _, token in pairs if token in written] == []


def test_symlinks_are_never_followed(every_case_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    collect([every_case_repo], out)

    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert OUTSIDE_CONTENT.encode() not in written


def test_plain_folder_symlink_to_outside(tmp_path: Path, outside_file: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    (folder / "leak.py").symlink_to(outside_file)
    (folder / "leakdir").symlink_to(outside_file.parent)
    report, table = collect([folder], tmp_path / "out")

    assert [r["file_path"] for r in table.to_pylist()] == ["main.py"]
    assert report.dropped == {"symlink": 2}
    assert report.sources[0].commit is None


def test_exact_and_near_duplicates_across_repos(every_case_repo: Path, second_repo: Path, tmp_path: Path) -> None:
    report, table = collect([every_case_repo, second_repo], tmp_path / "out")

    paths = set(rows_by_path(table))
    assert ("every-case", "common/helpers.py") in paths
    assert ("second", "common/helpers.py") not in paths  # same content up to trailing spaces and CRLF
    assert ("every-case", "src/app.py") in paths
    assert ("second", "lib/near_app.py") not in paths  # one line of 120 differs
    assert ("second", "lib/own.py") in paths
    assert (report.duplicates_exact, report.duplicates_near) == (1, 1)
    second = next(s for s in report.sources if s.repo_id == "second")
    assert (second.duplicates_exact, second.duplicates_near, second.files_kept) == (1, 1, 1)


def test_same_input_gives_same_rows(every_case_repo: Path, second_repo: Path, tmp_path: Path) -> None:
    _, first = collect([every_case_repo, second_repo], tmp_path / "a", workers=1)
    _, again = collect([second_repo, every_case_repo], tmp_path / "b", workers=2)

    assert first.to_pylist() == again.to_pylist()


def test_parallel_workers_match_serial(tmp_path: Path, make_repo) -> None:
    from tests.collect.conftest import module_source

    repo = make_repo("many", {f"pkg/mod_{i}.py": module_source(f"m{i}", functions=3 + i % 7) for i in range(300)})
    _, serial = collect([repo], tmp_path / "serial", workers=1)
    _, parallel = collect([repo], tmp_path / "parallel", workers=2)

    assert serial.num_rows == parallel.num_rows > 0
    assert serial.to_pylist() == parallel.to_pylist()


def test_loads_with_datasets_and_shards_are_capped(second_repo: Path, make_repo, tmp_path: Path) -> None:
    import datasets

    from tests.collect.conftest import module_source

    repo = make_repo("big", {f"m{i}.py": module_source(f"b{i}") for i in range(30)})
    out = tmp_path / "out"
    report, table = collect([repo, second_repo], out, shard_max_bytes=20_000)

    assert len(report.shards) > 1
    assert report.shards == sorted(p.name for p in (out / "data").iterdir())
    fingerprint = json.loads((out / "manifest.json").read_text())["dataset"]
    assert report.shards == [
        f"train-{i:05d}-of-{len(report.shards):05d}-{fingerprint}.parquet" for i in range(len(report.shards))
    ]
    for name in report.shards:
        shard = pq.read_table(out / "data" / name)
        assert shard.num_rows == 1 or sum(shard.column("num_bytes").to_pylist()) <= 20_000
    loaded = datasets.load_dataset(str(out), split="train")
    assert loaded.num_rows == table.num_rows == report.files_kept
    assert loaded.column_names == DATASET_SCHEMA.names
    assert sorted(loaded["file_path"]) == sorted(table.column("file_path").to_pylist())


def test_output_files_and_manifest(every_case_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report, _ = collect([every_case_repo], out)

    for name in ("manifest.json", "report.json", "pcopilot_config.yaml", "README.md"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    (source,) = manifest["sources"]
    assert source["repo_id"] == "every-case"
    assert source["commit"] == report.sources[0].commit
    assert source["files_kept"] == len(EXPECTED_KEPT)
    assert sum(source["dropped"].values()) == len(EXPECTED_DROPPED)
    saved = json.loads((out / "report.json").read_text())
    assert saved["files_kept"] == report.files_kept
    assert saved["dropped"] == report.dropped


def test_no_sources_is_a_clear_error(tmp_path: Path) -> None:
    from personal_copilot.errors import PcopilotError

    with pytest.raises(PcopilotError, match="no sources"):
        run_collect(CollectConfig(sources=[], output=tmp_path / "out", workers=1))


def test_folder_ignored_by_an_enclosing_checkout_is_read_as_a_plain_folder(make_repo, tmp_path: Path) -> None:
    checkout = make_repo("tool-checkout", {".gitignore": "versions/\n", "tool.py": "x = 1\n"})
    library = checkout / "versions" / "lib"
    library.mkdir(parents=True)
    (library / "module.py").write_text("def f():\n    return 1\n")
    report, table = collect([library], tmp_path / "out")

    assert [r["file_path"] for r in table.to_pylist()] == ["module.py"]
    assert report.sources[0].commit is None


def test_parallel_collect_from_a_script_without_main_guard(make_repo, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.collect.conftest import module_source

    repo = make_repo("scripted", {f"m{i}.py": module_source(f"s{i}", functions=2 + i % 5) for i in range(300)})
    script = (
        "from pathlib import Path\n"
        "from personal_copilot.collect import CollectConfig, run_collect\n"
        f"report = run_collect(CollectConfig(sources=[{str(repo)!r}], output=Path({str(tmp_path / 'out')!r}), "
        f"workers=2, cache_dir=Path({str(tmp_path / 'c')!r})))\n"
        "print('kept', report.files_kept)\n"
    )
    result = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "kept 300" in result.stdout


def test_manifest_lists_the_dropped_files_by_reason_bounded(
    every_case_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    collect([every_case_repo], out)
    expected: dict[str, list[str]] = {}
    for path, reason in sorted(EXPECTED_DROPPED.items()):
        expected.setdefault(reason, []).append(path)
    (source,) = json.loads((out / "manifest.json").read_text())["sources"]
    assert source["dropped_files"] == expected

    collect([every_case_repo], out)  # unchanged: the source comes from its cache, and so do its dropped files
    (again,) = json.loads((out / "manifest.json").read_text())["sources"]
    assert again["dropped_files"] == expected

    monkeypatch.setattr(importlib.import_module("personal_copilot.collect.run"), "DROPPED_FILES_LISTED", 1)
    collect([every_case_repo], tmp_path / "bounded")
    (bounded,) = json.loads((tmp_path / "bounded" / "manifest.json").read_text())["sources"]
    assert bounded["dropped_files"] == {reason: paths[:1] for reason, paths in expected.items()}
    assert sum(bounded["dropped"].values()) == len(EXPECTED_DROPPED)  # the counts stay whole
