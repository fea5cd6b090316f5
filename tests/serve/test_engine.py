"""The transformers engine without HTTP, on the tiny Llama with two LoRA adapters: prompts built like training,
truncation, greedy equal to `model.generate`, mixed-adapter batches, sampling seeds, stops, and training runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import LogitsProcessorList

from personal_copilot.dataset import FimEncoder, HealingProcessor, Layout, strip_healed
from personal_copilot.errors import PcopilotError
from personal_copilot.serve import GenerationRequest, RequestError, SamplingParams, ServeConfig
from personal_copilot.serve.engine import TransformersEngine
from personal_copilot.serve.prompts import PromptBuilder, share_window, split_fim_prompt

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n    return total\n"


def healed_fim_ids(encoder: FimEncoder, prefix: str, suffix: str, layout: Layout = "psm") -> list[int]:
    """The FIM prompt the server builds: the prefix without its last token, which the completion writes."""
    prefix_ids, suffix_ids = encoder.encode([prefix, suffix])
    return encoder.fim_ids(layout, prefix_ids[:-1], suffix_ids)


def healed_reference(engine, prepared, max_new_tokens: int, adapter: str | None = None) -> str:
    """`model.generate` alone on a prepared FIM prompt, healed as the benchmarks heal, the healed text taken off."""
    ids = prepared.prompt_ids
    healing = HealingProcessor(engine.builder.healer, len(ids), [prepared.healed])
    adapters = {"adapter_names": [adapter or "__base__"]} if engine.info.adapters else {}
    with torch.inference_mode():
        output = engine.model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            generation_config=engine.generation_config(max_new_tokens),
            logits_processor=LogitsProcessorList([healing]),
            **adapters,
        )
    raw = engine.decode([t for t in output[0, len(ids) :].tolist() if t not in engine.stop_ids])
    assert raw.startswith(prepared.healed)
    return strip_healed(raw, prepared.healed)


def generate(engine, *requests: GenerationRequest):
    return engine.generate([engine.prepare(r) for r in requests], lambda i, event: True)


def test_fim_prompt_is_the_training_encoders_healed(engine, tokenizer) -> None:
    prepared = engine.prepare(GenerationRequest(prompt=PREFIX, suffix=SUFFIX))
    encoder = FimEncoder(tokenizer)
    prefix_ids = encoder.encode([PREFIX])[0]
    assert prepared.prompt_ids == healed_fim_ids(encoder, PREFIX, SUFFIX)
    assert prepared.healed == engine.decode(prefix_ids[-1:]) and PREFIX.endswith(prepared.healed)
    assert (prepared.prefix, prepared.suffix, prepared.truncated_tokens) == (PREFIX, SUFFIX, 0)
    unhealed = PromptBuilder(engine.builder.encoder, 256).build(GenerationRequest(prompt=PREFIX, suffix=SUFFIX))
    assert unhealed.ids == encoder.prompt_ids(PREFIX, SUFFIX) and unhealed.healed == ""
    plain = engine.prepare(GenerationRequest(prompt=PREFIX))
    assert plain.healed == "" and plain.prompt_ids == encoder.encode([PREFIX])[0]  # only FIM prompts are healed


def test_fim_completions_are_healed_as_the_benchmarks_heal(engine) -> None:
    """The engine's greedy FIM completion is `model.generate` under the benchmarks' `HealingProcessor`, with the
    healed text taken off; the streamed texts add up to it."""
    request = GenerationRequest(prompt=PREFIX, suffix=SUFFIX, model="tiny-starcoder", max_new_tokens=16)
    (result,) = generate(engine, request)
    expected = healed_reference(engine, engine.prepare(request), 16, engine.info.adapter_for("tiny-starcoder"))
    assert expected.startswith(result.text)
    assert result.text == expected or result.finish_reason in ("block_end", "stop_sequence")
    assert "".join(event.text for event in result.tokens) == result.text


def test_a_client_built_fim_prompt_is_split_and_built_the_same_way(engine) -> None:
    client_prompt = f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    prepared = engine.prepare(GenerationRequest(prompt=client_prompt))
    assert prepared.prompt_ids == engine.prepare(GenerationRequest(prompt=PREFIX, suffix=SUFFIX)).prompt_ids
    assert prepared.suffix == SUFFIX
    assert split_fim_prompt("<fim_prefix>only a prefix", engine.info.fim) is None


def test_long_fim_prompt_loses_outer_ends_and_keeps_sentinels(engine, encoder) -> None:
    prefix = "".join(f"value_{i} = {i}\n" for i in range(200)) + "x = "
    suffix = "\n" + "".join(f"after_{i} = {i}\n" for i in range(200))
    prepared = engine.prepare(GenerationRequest(prompt=prefix, suffix=suffix))
    ids = prepared.prompt_ids
    assert len(ids) == engine.info.max_input_tokens and prepared.truncated_tokens > 0
    assert ids[0] == encoder.prefix_id and ids[-1] == encoder.middle_id and ids.count(encoder.suffix_id) == 1
    prefix_ids, suffix_ids = encoder.encode([prefix, suffix])
    prefix_ids = prefix_ids[:-1]  # healed: its last token is the completion's to write
    kept_prefix = ids[1 : ids.index(encoder.suffix_id)]
    kept_suffix = ids[ids.index(encoder.suffix_id) + 1 : -1]
    assert kept_prefix == prefix_ids[-len(kept_prefix) :] and kept_suffix == suffix_ids[: len(kept_suffix)]
    assert len(kept_suffix) == (engine.info.max_input_tokens - 3) // 4


def test_share_window_gives_unused_room_to_the_other_side() -> None:
    assert share_window([1, 2, 3, 4, 5, 6], [7], 4) == ([4, 5, 6], [7])
    assert share_window([1], [2, 3, 4, 5, 6], 4) == ([1], [2, 3, 4])
    assert share_window([1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12], 8) == ([3, 4, 5, 6, 7, 8], [9, 10])


def test_long_plain_prompt_keeps_its_end_and_chat_is_refused(engine) -> None:
    prompt = "".join(f"line_{i} = {i}\n" for i in range(300))
    prepared = engine.prepare(GenerationRequest(prompt=prompt))
    assert len(prepared.prompt_ids) == engine.info.max_input_tokens
    assert engine.decode(prepared.prompt_ids).endswith("line_299 = 299\n")
    with pytest.raises(RequestError, match="conversation has") as error:
        engine.prepare(GenerationRequest(messages=(("user", prompt),)))
    assert error.value.field == "messages"


def test_reject_policy_and_tgi_truncate(serve_config) -> None:
    from dataclasses import replace

    strict = TransformersEngine.load(replace(serve_config, prompt_overflow="reject", adapters=[]))
    long_prefix = "x = 1\n" * 300
    with pytest.raises(RequestError, match="over the limit of 256") as error:
        strict.prepare(GenerationRequest(prompt=long_prefix, suffix=""))
    assert error.value.status == 422
    prepared = strict.prepare(GenerationRequest(prompt=long_prefix, suffix="", truncate=50))
    assert len(prepared.prompt_ids) == 50


def test_context_files_go_before_the_fim_prompt_and_are_dropped_first(engine, encoder) -> None:
    from personal_copilot.serve.generation import ContextFile

    files = (ContextFile("old.py", "OLD = 1\n" * 200), ContextFile("util.py", "def helper():\n    return 1\n"))
    prepared = engine.prepare(GenerationRequest(prompt=PREFIX, suffix=SUFFIX, context_files=files))
    file_sep = engine.tokenizer.convert_tokens_to_ids("<file_sep>")
    fim = healed_fim_ids(encoder, PREFIX, SUFFIX)
    assert prepared.prompt_ids[-len(fim) :] == fim
    context = engine.decode(prepared.prompt_ids[: -len(fim)])
    assert context == "<file_sep>util.py\ndef helper():\n    return 1\n" and prepared.prompt_ids[0] == file_sep
    assert prepared.truncated_tokens > 0  # old.py did not fit


def test_greedy_equals_model_generate_for_base_and_each_adapter(engine) -> None:
    prompt_ids = engine.prepare(GenerationRequest(prompt=PREFIX)).prompt_ids
    texts = {}
    for name in ("tiny-starcoder", "a", "b"):
        (result,) = generate(engine, GenerationRequest(prompt=PREFIX, model=name, max_new_tokens=24))
        adapter = engine.info.adapter_for(name) or "__base__"
        with torch.inference_mode():
            output = engine.model.generate(
                input_ids=torch.tensor([prompt_ids]),
                attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                generation_config=engine.generation_config(24),
                adapter_names=[adapter],
            )
        new_ids = [t for t in output[0, len(prompt_ids) :].tolist() if t not in engine.stop_ids]
        assert result.text == engine.decode(new_ids)
        texts[name] = result.text
    assert len(set(texts.values())) == 3, texts  # base, a and b differ


def test_a_mixed_batch_equals_requests_one_by_one(engine) -> None:
    requests = [
        GenerationRequest(prompt=PREFIX, model="a", max_new_tokens=16),
        GenerationRequest(prompt="import os\n", model="b", max_new_tokens=10),
        GenerationRequest(prompt=PREFIX, suffix=SUFFIX, max_new_tokens=16),
        GenerationRequest(prompt="x = ", model="a", max_new_tokens=12, sampling=SamplingParams(True, 0.9, seed=3)),
    ]
    batched = generate(engine, *requests)
    alone = [generate(engine, request)[0] for request in requests]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.generated_tokens for r in batched] == [r.generated_tokens for r in alone]


def test_sampling_is_reproducible_by_seed(engine) -> None:
    def sample(seed: int | None):
        sampling = SamplingParams(do_sample=True, temperature=1.5, top_k=50, top_p=0.95, seed=seed)
        return generate(engine, GenerationRequest(prompt="x = ", max_new_tokens=16, sampling=sampling))[0]

    first, again, other = sample(1), sample(1), sample(2)
    assert first.text == again.text and first.seed == 1
    assert first.text != other.text
    assert sample(None).seed is not None  # a fresh seed, reported


@pytest.mark.parametrize(
    "extreme",
    [
        SamplingParams(do_sample=True, temperature=1e-45, seed=1),
        SamplingParams(do_sample=True, repetition_penalty=5e-324, seed=2),
        SamplingParams(repetition_penalty=5e-324),
        SamplingParams(do_sample=True, temperature=1e-45, top_p=1e-9, repetition_penalty=1e308, seed=3),
    ],
)
def test_extreme_sampling_settings_generate_and_leave_the_batch_alone(engine, extreme: SamplingParams) -> None:
    """Legal but extreme values (which made torch raise `probability tensor contains either inf, nan or element < 0`
    and the whole batch fail) generate, and the other rows of their batch get what they get alone."""
    others = [
        GenerationRequest(prompt=PREFIX, model="a", max_new_tokens=8),
        GenerationRequest(prompt="x = ", max_new_tokens=8, sampling=SamplingParams(True, 0.9, seed=3)),
    ]
    odd, *batched = generate(
        engine, GenerationRequest(prompt="import os\n", max_new_tokens=8, sampling=extreme), *others
    )
    assert odd.generated_tokens >= 1 and odd.finish_reason in ("length", "eos_token")
    assert [r.text for r in batched] == [generate(engine, request)[0].text for request in others]


def test_a_near_zero_temperature_samples_the_greedy_choice(engine) -> None:
    greedy = generate(engine, GenerationRequest(prompt=PREFIX, max_new_tokens=12))[0]
    cold = SamplingParams(do_sample=True, temperature=1e-45, seed=5)
    assert generate(engine, GenerationRequest(prompt=PREFIX, max_new_tokens=12, sampling=cold))[0].text == greedy.text


def test_penalties_change_greedy_choices(engine) -> None:
    plain = generate(engine, GenerationRequest(prompt="return", max_new_tokens=24))[0]
    penalized = SamplingParams(repetition_penalty=3.0, frequency_penalty=2.0)
    assert generate(engine, GenerationRequest(prompt="return", max_new_tokens=24, sampling=penalized))[0].text != (
        plain.text
    )


def test_stop_strings_cut_the_text_and_streamed_text_adds_up(engine) -> None:
    (full,) = generate(engine, GenerationRequest(prompt=PREFIX, model="a", max_new_tokens=24))
    stop = full.text[5:8]
    events = []
    prepared = engine.prepare(GenerationRequest(prompt=PREFIX, model="a", max_new_tokens=24, stop=(stop,)))
    (result,) = engine.generate([prepared], lambda i, event: events.append(event) or True)
    assert result.text == full.text[: full.text.index(stop)] and result.finish_reason == "stop_sequence"
    assert "".join(e.text for e in events) == result.text
    assert all(e.logprob <= 0 for e in events)


def test_returning_false_from_on_token_stops_the_row(engine) -> None:
    prepared = engine.prepare(GenerationRequest(prompt=PREFIX, max_new_tokens=40))
    (result,) = engine.generate([prepared], lambda i, event: False)
    assert result.generated_tokens == 1 and result.finish_reason == "cancelled"


def test_decoding_keeps_code_spacing(engine) -> None:
    code = "from . import x\nfrom ..y import z ,w\n"
    assert engine.decode(engine.tokenizer.encode(code, add_special_tokens=False)) == code


def test_limits_and_names(engine) -> None:
    with pytest.raises(RequestError, match="over this server's limit of 48") as error:
        engine.prepare(GenerationRequest(prompt="x", max_new_tokens=49))
    assert error.value.field == "max_new_tokens"
    with pytest.raises(RequestError) as error:
        engine.prepare(GenerationRequest(prompt="x", model="nope"))
    assert error.value.status == 404
    assert engine.info.names == ("tiny-starcoder", "a", "b") and engine.info.base_name == "tiny-starcoder"  # --name
    with pytest.raises(RequestError, match="empty"):
        engine.prepare(GenerationRequest(prompt=""))


def test_a_training_run_serves_its_adapter_by_default(lora_run: Path, tiny_models, adapters) -> None:
    engine = TransformersEngine.load(ServeConfig(model=str(lora_run), adapters=[f"b={adapters['b']}"]))
    info = engine.info
    assert info.name == lora_run.name and info.default_adapter == lora_run.name
    assert info.base_name == Path(tiny_models["llama"]).name and info.adapters == (lora_run.name, "b")
    assert info.fim is not None and info.fim.family == "starcoder"
    tuned, base = generate(
        engine,
        GenerationRequest(prompt=PREFIX, max_new_tokens=16),
        GenerationRequest(prompt=PREFIX, model=info.base_name, max_new_tokens=16),
    )
    assert tuned.adapter == lora_run.name and base.adapter is None and tuned.text != base.text


def test_bad_model_and_adapter_paths_are_user_errors(tmp_path: Path, tiny_models, lora_run: Path) -> None:
    with pytest.raises(PcopilotError, match="no such directory"):
        TransformersEngine.load(ServeConfig(model=str(tmp_path / "missing")))
    with pytest.raises(PcopilotError, match=r"neither a model \(config\.json\) nor a LoRA adapter"):
        TransformersEngine.load(ServeConfig(model=str(tiny_models["llama"]), adapters=[f"x={tmp_path}"]))
    with pytest.raises(PcopilotError, match="holds a LoRA adapter, not a model"):
        TransformersEngine.load(ServeConfig(model=str(lora_run / "checkpoint-8")))
    with pytest.raises(ValueError, match="NAME=PATH"):
        ServeConfig(model="m", adapters=["no-equals-sign"])


def test_codellama_text_sentinels_are_split_with_their_spaces() -> None:
    from personal_copilot.dataset import get_family
    from personal_copilot.serve.prompts import fim_tokens

    tokens = fim_tokens(get_family("codellama"))
    assert (tokens.prefix, tokens.suffix, tokens.middle) == ("<PRE> ", " <SUF>", " <MID>")
    assert split_fim_prompt("<PRE> def f(): <SUF>\n    return 1 <MID>", tokens) == ("def f():", "\n    return 1")


def test_a_gpt_bigcode_model_serves_too(tiny_models) -> None:
    engine = TransformersEngine.load(ServeConfig(model=str(tiny_models["bigcode"]), max_new_tokens=16))
    assert engine.info.max_total_tokens == 512 and engine.info.model_type == "gpt_bigcode"
    prepared = engine.prepare(GenerationRequest(prompt=PREFIX, suffix=SUFFIX))
    (result,) = engine.generate([prepared], lambda i, event: True)
    assert healed_reference(engine, prepared, 16).startswith(result.text)  # FIM rules may end it earlier


def test_a_base_measured_best_in_spm_gets_spm_prompts(tiny_models, tmp_path: Path, tokenizer) -> None:
    """A base whose record (`base.json`, as `pcopilot base build` writes) says SPM is prompted in SPM, a client's
    PSM sentinel prompt re-ordered too; `--fim_layout` overrides it."""
    base = tmp_path / "spm-base"
    shutil.copytree(tiny_models["llama"], base)
    (base / "base.json").write_text(json.dumps({"fim_layout": "spm"}))
    encoder = FimEncoder(tokenizer)
    for chosen, layout in ((None, "spm"), ("psm", "psm")):
        engine = TransformersEngine.load(ServeConfig(model=str(base), fim_layout=chosen, precision="fp32"))
        client = engine.prepare(GenerationRequest(prompt=f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"))
        assert client.prompt_ids == healed_fim_ids(encoder, PREFIX, SUFFIX, layout)
