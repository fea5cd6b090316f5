"""`pcopilot export gguf` and `pcopilot run` on the tiny LoRA run: llama.cpp's converter on the merged model, and
llama.cpp agreeing with transformers (base + adapter) logit for logit and token for token, FIM prompts included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from personal_copilot.cli import main
from personal_copilot.dataset import FAMILIES, FimEncoder
from personal_copilot.errors import PcopilotError
from personal_copilot.export import GgufConfig, find_converter, read_gguf, run_export_gguf
from personal_copilot.export.local import fim_prompt_ids, generate, open_model, plain_prompt_ids

pytestmark = pytest.mark.slow

PROMPTS = {
    "plain": ("def total_count(items):\n    for index in range(count):\n        ", None),
    "unicode": ('"""héllo wörld 🙂: 3 + 33 + 333"""\nimport os\n', None),
    "fim": ("def add(value, total):\n    ", "\n    return total\n"),
}
FIM_ROLES = {
    "fim_pre": "<fim_prefix>",
    "fim_suf": "<fim_suffix>",
    "fim_mid": "<fim_middle>",
    "prefix": "<fim_prefix>",
    "suffix": "<fim_suffix>",
    "middle": "<fim_middle>",
    "fim_pad": "<fim_pad>",
    "fim_rep": "<repo_name>",
    "fim_sep": "<file_sep>",
    "eot": "<|endoftext|>",
}


def prompt_ids(tokenizer, prefix: str, suffix: str | None) -> list[int]:
    """The prompt as training made it (FimEncoder): the ids llama.cpp must be fed too."""
    encoder = FimEncoder(tokenizer)
    return encoder.encode([prefix])[0] if suffix is None else encoder.prompt_ids(prefix, suffix)


def transformers_logits(model, ids: list[int], adapter: bool = True) -> np.ndarray:
    with torch.no_grad():
        if adapter:
            return model(torch.tensor([ids])).logits[0].numpy()
        with model.disable_adapter():
            return model(torch.tensor([ids])).logits[0].numpy()


def llama_cpp_logits(path: str, ids: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=256, logits_all=True, verbose=False)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


def test_export_writes_a_checked_gguf_with_fim_ids_and_provenance(gguf_f16, lora_run: Path, run_tokenizer) -> None:
    output = Path(gguf_f16.output)

    assert sorted(p.name for p in output.parent.iterdir()) == [
        "tiny.gguf",
        "tiny.pcopilot_config.yaml",
        "tiny.report.json",
    ]  # no merge folder, partial file or log left behind
    assert gguf_f16.size_bytes == output.stat().st_size
    assert (gguf_f16.outtype, gguf_f16.adapter, gguf_f16.family) == ("f16", str(lora_run), "starcoder")
    assert gguf_f16.pre_tokenizer == "gpt-2"  # our tokenizer is unknown to the converter's hash table
    assert gguf_f16.tokenizer_texts_checked == 7
    info = read_gguf(output)  # the file itself, not the report
    vocabulary = run_tokenizer.get_vocab()
    expected = {f"tokenizer.ggml.{role}_token_id": vocabulary[token] for role, token in FIM_ROLES.items()}
    assert {key: info.token_ids[key] for key in expected} == expected == gguf_f16.fim_token_ids
    assert (info.architecture, info.context_length, info.pre_tokenizer) == ("llama", 512, "gpt-2")
    provenance = yaml.safe_load((output.parent / "tiny.pcopilot_config.yaml").read_text())
    assert provenance["stage"] == "export gguf" and provenance["details"]["adapter"] == str(lora_run)
    assert provenance["config"]["outtype"] == "f16"
    assert json.loads((output.parent / "tiny.report.json").read_text())["size_bytes"] == gguf_f16.size_bytes


def test_llama_cpp_logits_equal_transformers_with_the_adapter(gguf_f16, tuned_model, run_tokenizer) -> None:
    for prefix, suffix in PROMPTS.values():
        ids = prompt_ids(run_tokenizer, prefix, suffix)
        tuned = transformers_logits(tuned_model, ids)
        gguf = llama_cpp_logits(gguf_f16.output, ids)

        np.testing.assert_allclose(gguf, tuned, atol=2e-2)  # f16 weights
        assert np.abs(tuned - transformers_logits(tuned_model, ids, adapter=False)).max() > 0.2  # adapter merged


def test_greedy_tokens_equal_transformers_for_plain_and_fim_prompts(gguf_f16, tuned_model, run_tokenizer) -> None:
    import llama_cpp

    info = read_gguf(Path(gguf_f16.output))
    llm = open_model(Path(gguf_f16.output), 256)
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        end_of_generation = [i for i in range(len(run_tokenizer)) if llama_cpp.llama_vocab_is_eog(vocab, i)]
        for prefix, suffix in PROMPTS.values():
            ids = fim_prompt_ids(llm, info, prefix, suffix) if suffix else plain_prompt_ids(llm, prefix)
            assert ids == prompt_ids(run_tokenizer, prefix, suffix)  # the layout and ids training used
            generation = generate(llm, ids, max_tokens=24)
            with torch.no_grad():
                output = tuned_model.generate(
                    torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=end_of_generation
                )
            expected = output[0, len(ids) :].tolist()
            stopped = bool(expected) and expected[-1] in end_of_generation
            assert generation.ids == (expected[:-1] if stopped else expected)
            assert generation.finish_reason == ("stop" if stopped else "length")
    finally:
        llm.close()
    assert set(end_of_generation) >= {run_tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<file_sep>")}


def test_run_command_prints_the_fim_completion(gguf_f16, tuned_model, run_tokenizer, capsys) -> None:
    prefix, suffix = PROMPTS["fim"]
    ids = prompt_ids(run_tokenizer, prefix, suffix)
    with torch.no_grad():
        output = tuned_model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False, eos_token_id=[0])
    expected = run_tokenizer.decode(output[0, len(ids) :], skip_special_tokens=True)

    argv = ["run", "--gguf", gguf_f16.output, "--prompt", prefix, "--suffix", suffix, "--max_tokens", "12"]
    assert main(argv) == 0

    assert capsys.readouterr().out == expected + "\n"
    handwritten = FAMILIES["starcoder"].fim_prompt(prefix, suffix)  # sentinel text acts as sentinels without --suffix
    assert main(["run", "--gguf", gguf_f16.output, "--prompt", handwritten, "--max_tokens", "12"]) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_run_says_when_the_prompt_does_not_fit(gguf_f16, capsys) -> None:
    argv = ["run", "--gguf", gguf_f16.output, "--prompt", "x = 1\n" * 100, "--context_window", "64"]

    assert main(argv) == 2
    error = capsys.readouterr().err  # llama.cpp raises a tiny context to its minimum (256), which the message names
    assert "the prompt is 400 tokens, the context window 256: shorten it or raise --context_window" in error


def test_cli_f32_export_with_explicit_converter_is_exact_and_twice_the_size(
    gguf_f16, lora_run: Path, tuned_model, run_tokenizer, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "tiny-f32.gguf"
    argv = ["export", "gguf", "--model", str(lora_run), "--output", str(output), "--outtype", "f32"]
    assert main([*argv, "--llama_cpp_dir", str(find_converter())]) == 0

    assert "FIM family" in capsys.readouterr().out
    assert 1.6 < output.stat().st_size / gguf_f16.size_bytes < 2.0  # the weights in 4 bytes instead of 2
    ids = prompt_ids(run_tokenizer, *PROMPTS["fim"])
    np.testing.assert_allclose(llama_cpp_logits(str(output), ids), transformers_logits(tuned_model, ids), atol=3e-4)


def test_a_starcoder_architecture_model_converts_exactly(tokenizer_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPTBigCodeConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = GPTBigCodeConfig(
        vocab_size=len(tokenizer),
        n_embd=64,
        n_inner=256,  # StarCoder's 4 x n_embd, the shape llama.cpp's converter writes
        n_layer=2,
        n_head=4,
        n_positions=512,
        multi_query=True,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(tmp_path / "starcoder")
    tokenizer.save_pretrained(tmp_path / "starcoder")

    report = run_export_gguf(GgufConfig(model=str(tmp_path / "starcoder"), output=tmp_path / "sc.gguf", outtype="f32"))

    assert report.adapter is None and read_gguf(tmp_path / "sc.gguf").architecture == "starcoder"
    ids = prompt_ids(tokenizer, *PROMPTS["fim"])
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(llama_cpp_logits(report.output, ids), expected, atol=1e-3)


def test_unknown_pre_tokenizer_fails_with_the_reason_and_leaves_no_gguf(tiny_models, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_models["llama"], model)
    tokenizer_json = json.loads((model / "tokenizer.json").read_text())
    tokenizer_json["normalizer"] = {"type": "NFKC"}  # no llama.cpp pre-tokenizer does this
    (model / "tokenizer.json").write_text(json.dumps(tokenizer_json))
    output = tmp_path / "out" / "model.gguf"

    with pytest.raises(PcopilotError, match="does not know the pre-tokenizer") as error:
        run_export_gguf(GgufConfig(model=str(model), output=output))

    assert not output.exists()
    log = output.with_name("model.gguf.log")
    assert str(log) in str(error.value) and "BPE pre-tokenizer was not recognized" in log.read_text()


def test_an_existing_gguf_is_not_replaced_without_overwrite(tmp_path: Path, capsys) -> None:
    output = tmp_path / "team.gguf"
    output.write_bytes(b"GGUF an earlier export")
    assert main(["export", "gguf", "--model", str(tmp_path / "run"), "--output", str(output)]) == 2
    assert f"--output {output} exists; choose another file or pass --overwrite" in capsys.readouterr().err
    assert output.read_bytes() == b"GGUF an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.gguf"]
