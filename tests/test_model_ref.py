"""What a --model / --base / --adapter value names, answered once for every stage (`personal_copilot.model_ref`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from personal_copilot.adapters.inputs import resolve_base
from personal_copilot.configs import check_output_owner, read_run_record, write_run_config
from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import fim_layout, looks_local, resolve_model_and_adapter, resolve_model_ref


def test_a_lora_run_brings_its_base_adapter_tokenizer_and_family(lora_run: Path, tiny_models) -> None:
    ref = resolve_model_ref(str(lora_run))
    assert ref.kind == "adapter" and ref.base == str(tiny_models["llama"]) and ref.adapter == lora_run
    assert ref.tokenizer == str(lora_run) and ref.family == "starcoder" and ref.record.stage == "train"


def test_a_whole_model_run_is_the_model_itself(tiny_models, tmp_path: Path) -> None:
    run = tmp_path / "merged"
    shutil.copytree(tiny_models["llama"], run)
    write_run_config(run, "adapters merge", {}, base_model=str(tiny_models["llama"]), family="starcoder")
    ref = resolve_model_ref(str(run))
    assert (ref.kind, ref.base, ref.adapter, ref.tokenizer, ref.family) == (
        "model",
        str(run),
        None,
        str(run),
        "starcoder",
    )


def test_a_plain_adapter_folder_names_its_base(lora_run: Path, tiny_models, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    shutil.copy(lora_run / "adapter_config.json", adapter)
    ref = resolve_model_ref(str(adapter))
    assert ref.base == json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert ref.adapter == adapter and ref.tokenizer == ref.base  # no tokenizer beside the adapter: the base's
    assert ref.family is None and ref.record is None


def test_a_model_with_an_explicit_adapter(lora_run: Path, tiny_models) -> None:
    ref = resolve_model_and_adapter(str(tiny_models["llama"]), str(lora_run))
    assert (ref.base, ref.adapter, ref.tokenizer) == (str(tiny_models["llama"]), lora_run, str(lora_run))
    assert resolve_model_ref("bigcode/starcoderbase-1b").kind == "hub"
    with pytest.raises(PcopilotError, match="give --adapter only with a base model"):
        resolve_model_and_adapter(str(lora_run), str(lora_run))
    with pytest.raises(PcopilotError, match="is a whole model, not a LoRA adapter"):
        resolve_model_and_adapter(str(tiny_models["llama"]), str(tiny_models["llama"]))


def test_a_path_that_does_not_exist_fails_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for value in ("./missing", "~/missing-pcopilot-model", "/missing", "runs/missing", "a/b/c", "a/"):
        assert looks_local(value), value
        with pytest.raises(PcopilotError, match="no such directory"):
            resolve_model_ref(value)
    for value in ("bigcode/starcoderbase-1b", "gpt2"):
        assert not looks_local(value) and resolve_model_ref(value).base == value


def test_base_names_the_embedded_base_everywhere(tiny_models, lora_run: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PCOPILOT_BASE_MODEL", str(tiny_models["llama"]))
    ref = resolve_model_ref("base")
    assert (ref.kind, ref.base, ref.tokenizer) == ("model", str(tiny_models["llama"]), str(tiny_models["llama"]))
    assert resolve_model_and_adapter("base", str(lora_run)).adapter == lora_run
    assert resolve_base("base", []) == str(tiny_models["llama"])
    monkeypatch.setenv("PCOPILOT_BASE_MODEL", str(tmp_path / "nothing"))
    with pytest.raises(PcopilotError, match="embedded base model is not at"):
        resolve_model_ref("base")


def test_a_quickstart_run_stands_for_the_model_it_tuned(lora_run: Path, tmp_path: Path) -> None:
    shutil.copytree(lora_run, tmp_path / "qs" / "run")
    write_run_config(tmp_path / "qs", "quickstart", {})
    ref = resolve_model_ref(str(tmp_path / "qs"))
    assert ref.adapter == tmp_path / "qs" / "run" and ref.family == "starcoder"


def test_folders_that_hold_no_model_say_what_they_are(collected: Path, lora_run: Path, tmp_path: Path) -> None:
    with pytest.raises(PcopilotError, match=r"output of `pcopilot collect`, not a model"):
        resolve_model_ref(str(collected))
    nested = tmp_path / "runs"
    shutil.copytree(lora_run, nested / "a", ignore=shutil.ignore_patterns("checkpoint-*", "pcopilot_config.yaml"))
    with pytest.raises(PcopilotError, match=r"sub-folders: a"):
        resolve_model_ref(str(nested))
    with pytest.raises(PcopilotError, match=r"neither a model \(config.json\) nor a LoRA adapter"):
        resolve_model_ref(str((tmp_path / "empty").mkdir() or tmp_path / "empty"))


def test_an_adapter_is_not_a_base(lora_run: Path, tiny_models) -> None:
    with pytest.raises(PcopilotError, match=rf"is a LoRA adapter .*pass its base \({tiny_models['llama']}\)"):
        resolve_base(str(lora_run), [])


def test_a_stage_refuses_an_output_folder_another_stage_owns(lora_run: Path, collected: Path) -> None:
    with pytest.raises(PcopilotError, match=r"output of `pcopilot train`; `pcopilot collect` would replace"):
        check_output_owner(lora_run, "collect")
    with pytest.raises(PcopilotError, match=r"output of `pcopilot collect`; `pcopilot train` would replace"):
        check_output_owner(collected, "train")
    check_output_owner(lora_run, "train")
    assert read_run_record(lora_run).stage == "train"


def test_the_fim_layout_is_the_flag_else_the_bases_measured_one_else_psm(tmp_path: Path) -> None:
    assert fim_layout(str(tmp_path)) == fim_layout("bigcode/starcoder2-3b") == "psm"
    (tmp_path / "base.json").write_text(json.dumps({"fim_layout": "spm"}))
    assert fim_layout(str(tmp_path)) == "spm" and fim_layout(str(tmp_path), "psm") == "psm"
