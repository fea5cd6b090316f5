"""`pcopilot adapters combine`: cat is the exact weighted sum, linear is PEFT's formula with its cross terms, svd the
truncated SVD of the weighted sum; checks refuse what cannot be combined before any model is loaded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from personal_copilot.adapters import CombineConfig, MergeConfig, run_combine, run_merge
from personal_copilot.cli import main
from personal_copilot.errors import PcopilotError
from tests.adapters.conftest import assert_updates_close, logits, lora_updates, weighted_sum


def combine(output: Path, method: str = "cat", **settings) -> Path:
    config = CombineConfig(output=output, method=method, **settings)
    assert run_combine(config).exit_code == 0
    return output


def test_cat_is_the_weighted_sum_of_the_updates_and_loads_as_a_plain_adapter(
    llama_adapters, tiny_models, probe_ids, tmp_path: Path
) -> None:
    a, b = llama_adapters["a"], llama_adapters["b"]
    out = combine(tmp_path / "cat", adapters=[f"a={a}:0.7", f"b={b}:-0.4"])

    expected = weighted_sum((0.7, lora_updates(a)), (-0.4, lora_updates(b)))
    assert_updates_close(lora_updates(out), expected)  # k_proj / o_proj: only b's update
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["r"] == saved["lora_alpha"] == 8  # rank 4 + 4, scaling 1
    assert not list(out.glob("*/adapter_config.json"))  # at the folder's root, not in a sub-folder

    # The saved adapter on its base computes exactly the base with W + Σ wᵢ ΔWᵢ written in by hand.
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), out)
    by_hand = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    modules = dict(by_hand.named_modules())
    with torch.no_grad():
        for module, update in expected.items():
            modules[module].weight += update.float()
    torch.testing.assert_close(logits(adapted, probe_ids), logits(by_hand, probe_ids), atol=1e-5, rtol=1e-5)
    base = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    assert (logits(adapted, probe_ids) - logits(base, probe_ids)).abs().max() > 1e-2


def test_linear_is_peft_formula_with_cross_terms_not_the_weighted_sum(llama_adapters, tmp_path: Path) -> None:
    a, b = llama_adapters["a"], llama_adapters["b"]
    w = {"a": 0.6, "b": -0.5}
    s = {"a": 8 / 4, "b": 16 / 4}
    out = combine(tmp_path / "linear", "linear", adapters=[f"a={a}:{w['a']}", f"b={b}:{w['b']}"])

    factors = {name: load_file(path / "adapter_model.safetensors") for name, path in (("a", a), ("b", b))}
    module = "model.layers.0.self_attn.q_proj"  # adapted by both
    key = f"base_model.model.{module}"
    # PEFT 0.21: A' = Σ sign(wᵢsᵢ) √|wᵢsᵢ| Aᵢ, B' = Σ √|wᵢsᵢ| Bᵢ, scaling 1.
    a_new = sum(
        math.copysign(math.sqrt(abs(w[n] * s[n])), w[n] * s[n]) * factors[n][f"{key}.lora_A.weight"] for n in w
    )
    b_new = sum(math.sqrt(abs(w[n] * s[n])) * factors[n][f"{key}.lora_B.weight"] for n in w)
    combined = lora_updates(out)[module]
    torch.testing.assert_close(combined, (b_new @ a_new).double(), atol=1e-5, rtol=1e-5)

    weighted = weighted_sum((w["a"], lora_updates(a)), (w["b"], lora_updates(b)))[module]
    cross = sum(
        math.sqrt(abs(w[j] * s[j]))
        * math.copysign(math.sqrt(abs(w[i] * s[i])), w[i] * s[i])
        * factors[j][f"{key}.lora_B.weight"].double()
        @ factors[i][f"{key}.lora_A.weight"].double()
        for i in w
        for j in w
        if i != j
    )
    torch.testing.assert_close(combined, weighted + cross, atol=1e-5, rtol=1e-5)
    assert (combined - weighted).abs().max() > 1e-2  # the cross terms are not small


def test_svd_at_full_rank_is_exact_and_at_lower_rank_is_the_truncated_svd(llama_adapters, tmp_path: Path) -> None:
    a, c = llama_adapters["a"], llama_adapters["c"]
    expected = weighted_sum((1.0, lora_updates(a)), (0.5, lora_updates(c)))
    exact = combine(tmp_path / "svd12", "svd", adapters=[f"a={a}", f"c={c}:0.5"], svd_rank=12)
    assert_updates_close(lora_updates(exact), expected, atol=1e-4)

    truncated = lora_updates(combine(tmp_path / "svd8", "svd", adapters=[f"a={a}", f"c={c}:0.5"]))  # max rank: 8
    module = "model.layers.1.self_attn.q_proj"
    u, singular, vh = torch.linalg.svd(expected[module])
    torch.testing.assert_close(truncated[module], u[:, :8] @ torch.diag(singular[:8]) @ vh[:8], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["ties", "dare_linear", "magnitude_prune_svd"])
def test_sparsifying_methods_write_a_loadable_adapter(method, llama_adapters, tiny_models, probe_ids, tmp_path):
    a, b = llama_adapters["a"], llama_adapters["b"]
    out = combine(tmp_path / method, method, adapters=[f"a={a}", f"b={b}"], density=0.5)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), out)
    assert torch.isfinite(logits(model, probe_ids)).all()


def test_the_command_records_the_recipe(llama_adapters, tiny_models, tmp_path: Path, capsys) -> None:
    a, b = llama_adapters["a"], llama_adapters["b"]
    out = tmp_path / "recipe"
    assert main(["adapters", "combine", f"copilot={a}", f"assistant={b}:0.5", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "copilot" in printed and "rank (= alpha)" in printed and "warning: the adapters target different" in printed
    saved = yaml.safe_load((out / "pcopilot_config.yaml").read_text())
    assert saved["stage"] == "adapters combine"
    assert saved["base_model"] == str(tiny_models["llama"])
    assert saved["recipe"]["method"] == "cat"
    assert [(i["name"], i["weight"], i["path"]) for i in saved["recipe"]["inputs"]] == [
        ("copilot", 1.0, str(a)),
        ("assistant", 0.5, str(b)),
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["rank"] == 8 and [i["rank"] for i in report["inputs"]] == [4, 4]
    assert any("target different modules" in w for w in report["warnings"])


def test_rslora_adapters_keep_their_strength(llama_adapters, tiny_models, tmp_path: Path) -> None:
    """Our workaround for huggingface/peft#3449: combined alone with weight 1, an rslora adapter is itself."""
    rslora = llama_adapters["rslora"]
    out = combine(tmp_path / "rslora", adapters=[f"r={rslora}"])
    assert_updates_close(lora_updates(out), lora_updates(rslora))


def test_peft_add_weighted_adapter_overscales_rslora_adapters(llama_adapters, tiny_models, tmp_path: Path) -> None:
    """The upstream bug the workaround is for (huggingface/peft#3761): when this fails, peft is fixed and the
    workaround in personal_copilot/adapters/combine.py can go."""
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), llama_adapters["rslora"], adapter_name="r"
    )
    model.add_weighted_adapter(["r"], [1.0], "same", combination_type="linear")
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    torch.testing.assert_close(layer.get_delta_weight("same"), 2.0 * layer.get_delta_weight("r"))  # sqrt(r = 4)


def test_linear_with_different_ranks_is_refused_with_the_alternatives(llama_adapters, tmp_path: Path) -> None:
    config = CombineConfig(
        output=tmp_path / "x", method="linear", adapters=[f"a={llama_adapters['a']}", f"c={llama_adapters['c']}"]
    )
    with pytest.raises(PcopilotError, match=r"a: r=4, c: r=8.*--method cat.*--method svd"):
        run_combine(config)
    assert not (tmp_path / "x").exists()


def test_dora_is_refused(llama_adapters, tmp_path: Path) -> None:
    config = CombineConfig(output=tmp_path / "x", adapters=[f"a={llama_adapters['a']}", f"d={llama_adapters['dora']}"])
    with pytest.raises(PcopilotError, match=r"DoRA.*pcopilot adapters merge"):
        run_combine(config)


def test_adapters_of_another_base_need_allow_other_base(llama_adapters, sibling_llama, tiny_models, tmp_path) -> None:
    a, b = llama_adapters["a"], llama_adapters["b"]
    settings = {"adapters": [f"a={a}", f"b={b}"], "base": str(sibling_llama)}
    with pytest.raises(PcopilotError, match="--allow_other_base"):
        run_combine(CombineConfig(output=tmp_path / "x", **settings))
    report = run_combine(CombineConfig(output=tmp_path / "y", allow_other_base=True, **settings))
    assert report.base_model == str(sibling_llama)
    assert any("combined here on" in w for w in report.warnings)


def test_a_non_empty_output_needs_overwrite(llama_adapters, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(PcopilotError, match="--overwrite"):
        run_combine(CombineConfig(output=tmp_path / "out", adapters=[str(llama_adapters["a"])]))
    combine(tmp_path / "out", adapters=[str(llama_adapters["a"])], overwrite=True)
    assert not (tmp_path / "out" / "keep.txt").exists()


def test_code_buddy_keeps_the_chat_tokens_of_the_assistant(llama_adapters, chat_adapter, probe_ids, tmp_path) -> None:
    """The blog's copilot + assistant: the assistant's added tokens and their trained rows pass into the result."""
    copilot = llama_adapters["b"]
    out = combine(tmp_path / "buddy", adapters=[f"copilot={copilot}", f"assistant={chat_adapter}"])

    expected = weighted_sum((1.0, lora_updates(copilot)), (1.0, lora_updates(chat_adapter)))
    assert_updates_close(lora_updates(out), expected)
    rows = {k: v for k, v in load_file(chat_adapter / "adapter_model.safetensors").items() if "token_adapter" in k}
    combined = load_file(out / "adapter_model.safetensors")
    assert rows and all(torch.equal(combined[k], v) for k, v in rows.items())
    saved = json.loads((out / "adapter_config.json").read_text())
    assert (
        saved["trainable_token_indices"]
        == json.loads((chat_adapter / "adapter_config.json").read_text())["trainable_token_indices"]
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == saved["trainable_token_indices"][1]

    # ... and the merge grows the base's vocabulary to the tokenizer's, as training did.
    report = run_merge(MergeConfig(adapter=str(out), output=tmp_path / "merged"))
    assert report.verified
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert merged.get_input_embeddings().num_embeddings == len(tokenizer)
    chat_ids = tokenizer("<|im_start|>user\ndef f():<|im_end|>", return_tensors="pt").input_ids
    assert torch.isfinite(logits(merged, chat_ids)).all()


def test_two_adapters_with_trained_tokens_are_refused(chat_adapter, tmp_path: Path) -> None:
    config = CombineConfig(output=tmp_path / "x", adapters=[f"one={chat_adapter}", f"two={chat_adapter}"])
    with pytest.raises(PcopilotError, match="one and two both carry trained token embeddings"):
        run_combine(config)
