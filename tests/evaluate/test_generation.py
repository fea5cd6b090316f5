"""Generation for the benchmarks: batching and left padding change nothing, stop strings and stop tokens cut where
they should, FIM prompts are the family's template, prompts too long for the model are cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from personal_copilot.dataset import stop_token_ids
from personal_copilot.evaluate import ModelGenerator, ModelSpec, load_for_eval
from personal_copilot.evaluate.generation import cut_at_stops

PROMPTS = ["def total(values):\n    ", "import os\n", "class Cache:\n    def get(self, key):\n        return"]
HOLES = [("def total(values):\n    result = ", "\n    return result\n"), ("x = ", "\n"), ("import ", " as np\n")]


@pytest.fixture(scope="module", params=["llama", "bigcode"])
def generator(request, tiny_models: dict[str, Path]) -> ModelGenerator:
    path = str(tiny_models[request.param])
    return ModelGenerator(load_for_eval(ModelSpec(path, path, family="starcoder"), "fp32"), batch_size=3)


def one_by_one(generator: ModelGenerator) -> ModelGenerator:
    return ModelGenerator(generator.loaded, batch_size=1)


def test_batched_left_padded_generation_equals_one_by_one(generator: ModelGenerator) -> None:
    settings = {"num_samples": 1, "max_new_tokens": 12, "stop": (), "temperature": 0.0, "top_p": 1.0}
    assert generator.complete(PROMPTS, **settings) == one_by_one(generator).complete(PROMPTS, **settings)
    assert generator.infill(HOLES, max_new_tokens=12, stop=()) == one_by_one(generator).infill(
        HOLES, max_new_tokens=12, stop=()
    )


def test_stop_strings_cut_the_generated_text_only(generator: ModelGenerator) -> None:
    free = generator.complete(PROMPTS, num_samples=1, max_new_tokens=24, stop=(), temperature=0.0, top_p=1.0)
    stops = ("\n", "e")
    cut = generator.complete(PROMPTS, num_samples=1, max_new_tokens=24, stop=stops, temperature=0.0, top_p=1.0)
    assert [cut_at_stops(text, stops) for (text,) in free] == [text for (text,) in cut]
    assert all(not any(s in text for s in stops) for (text,) in cut)
    assert cut_at_stops("a\nb", ("\n",)) == "a" and cut_at_stops("abc", ()) == "abc"


class PromptSpy(ModelGenerator):
    """Records the token ids (and healed texts) the generator would send to the model."""

    def _generate(self, prompts, *args):
        self.prompts, self.heals = prompts, args[-1]
        return [""] * len(prompts)


def test_fim_prompts_are_the_familys_template_and_it_stops_at_its_tokens(generator: ModelGenerator) -> None:
    spy = PromptSpy(generator.loaded, batch_size=2, heal=False)
    spy.infill([("def f():\n    ", "\n"), ("<fim_middle>x = ", "\n")], max_new_tokens=4, stop=())
    texts = [spy.tokenizer.decode(ids, clean_up_tokenization_spaces=False) for ids in spy.prompts]
    assert texts == [
        "<fim_prefix>def f():\n    <fim_suffix>\n<fim_middle>",
        "<fim_prefix><fim_middle>x = <fim_suffix>\n<fim_middle>",
    ]
    middle_id = spy.tokenizer.convert_tokens_to_ids("<fim_middle>")
    assert [ids.count(middle_id) for ids in spy.prompts] == [1, 1]  # a sentinel spelled in the code stays text
    vocabulary = spy.tokenizer.get_vocab()
    assert {vocabulary[t] for t in ("<|endoftext|>", "<file_sep>", "<fim_middle>")} <= set(spy.stop_ids)
    assert spy.stop_ids == sorted(stop_token_ids(spy.tokenizer, spy.family))  # the server's stops too


def test_healed_prompts_leave_out_the_prefixs_last_token_for_the_middle_to_write(generator: ModelGenerator) -> None:
    spy = PromptSpy(generator.loaded, batch_size=2)
    spy.infill(HOLES, max_new_tokens=4, stop=())
    unhealed = PromptSpy(generator.loaded, batch_size=2, heal=False)
    unhealed.infill(HOLES, max_new_tokens=4, stop=())
    for (prefix, suffix), ids, healed in zip(HOLES, spy.prompts, spy.heals, strict=True):
        prefix_ids, suffix_ids = spy.encoder.encode([prefix, suffix])
        assert healed == spy.healer.texts[prefix_ids[-1]] and prefix.endswith(healed)
        assert ids == spy.encoder.fim_ids("psm", prefix_ids[:-1], suffix_ids)
    assert unhealed.heals == [""] * len(HOLES)


def test_prompts_too_long_for_the_model_are_cut_around_the_hole(generator: ModelGenerator) -> None:
    narrow = ModelGenerator(generator.loaded, batch_size=2, context_tokens=32)
    long_prefix, long_suffix = "x = 1\n" * 400, "y = 2\n" * 400
    (middle,) = narrow.infill([(long_prefix, long_suffix)], max_new_tokens=4, stop=())
    assert isinstance(middle, str) and narrow.truncated_prompts == 1
    sampling = {"num_samples": 2, "max_new_tokens": 4, "stop": (), "temperature": 0.8, "top_p": 0.9}
    (samples,) = narrow.complete(["z = 3\n" * 2000], **sampling)
    assert len(samples) == 2 and narrow.truncated_prompts == 2
