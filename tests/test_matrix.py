"""Every artefact works in every stage: each producer's real output (built once per session, on the tiny models)
through each consumer, asserting that it works with the right family and tokenizer, or is refused with a message that
says what to do instead. The refusals are the short list in `REFUSED` (and the table in docs/matrix.md).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from personal_copilot.configs import read_run_record, write_run_config
from personal_copilot.errors import PcopilotError

pytestmark = pytest.mark.slow

CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]
CONVERSATION = [
    {"role": "user", "content": "How do I reverse a list?"},
    {"role": "assistant", "content": "Use reversed(items) or items[::-1]."},
]

PRODUCERS = [
    "train lora",
    "train qlora",
    "train full",
    "train chat",
    "adapters merge",
    "adapters combine",
    "adapters scale",
    "adapters transfer",
    "quickstart run",
    "embedded base",
    "HF model folder",
    "PEFT folder",
]
CONSUMERS = [
    "eval compare",
    "eval fim",
    "eval loss",
    "serve --model",
    "serve --adapters",
    "export gguf",
    "adapters merge",
    "train --model",
]
ADAPTERS = {"train lora", "train qlora", "train chat", "adapters combine", "adapters scale", "adapters transfer"}
ADAPTERS |= {"quickstart run", "PEFT folder"}
MODELS = set(PRODUCERS) - ADAPTERS

_NOT_AN_ADAPTER = r"is a whole model, not a LoRA adapter: give it as --model|holds a full model \(use it as --base\)"
_NOT_A_MODEL = r"is a LoRA adapter .*merge it into its base first \(pcopilot adapters merge"
_NOTHING_TUNED = r"records no base it was tuned from.*Use --model BASE --adapter"
REFUSED: dict[tuple[str, str], str] = {
    # an adapter where a whole model is needed, and a whole model where an adapter is
    **{(producer, "train --model"): _NOT_A_MODEL for producer in ADAPTERS},
    **{(producer, "serve --adapters"): _NOT_AN_ADAPTER for producer in MODELS},
    **{(producer, "adapters merge"): _NOT_AN_ADAPTER for producer in MODELS},
    # a bare adapter folder (no run record) is served as what it is: an adapter of a base
    ("PEFT folder", "serve --model"): r"holds a LoRA adapter, not a model: serve its base with --model .* --adapters",
    # a model that records no base it was tuned from has nothing to be compared with
    ("embedded base", "eval compare"): _NOTHING_TUNED,
    ("HF model folder", "eval compare"): _NOTHING_TUNED,
}


@pytest.fixture(scope="session")
def produce(
    request: pytest.FixtureRequest, tiny_models: dict[str, Path], collected: Path, tmp_path_factory
) -> Callable[[str], str]:
    """produce(producer) -> the --model value of that producer's output, built the first time it is asked for."""
    from personal_copilot.adapters import (
        CombineConfig,
        MergeConfig,
        ScaleConfig,
        TransferConfig,
        run_combine,
        run_merge,
        run_scale,
        run_transfer,
    )

    root = tmp_path_factory.mktemp("matrix")
    llama = tiny_models["llama"]
    built: dict[str, str] = {}

    def lora() -> Path:
        return request.getfixturevalue("lora_run")

    def chat() -> Path:
        chats = root / "chats.jsonl"
        chats.write_text("".join(json.dumps({"messages": CONVERSATION}) + "\n" for _ in range(8)))
        return _train(llama, [chats], root / "chat", task="chat")

    def combine() -> Path:
        adapters = [f"tuned={lora()}", f"half={produce('adapters scale')}"]
        return run_combine(CombineConfig(adapters=adapters, method="cat", output=root / "combined")).output

    def transfer() -> Path:
        shutil.copytree(llama, root / "sibling-llama")
        config = TransferConfig(adapter=str(lora()), base=str(root / "sibling-llama"), output=root / "transferred")
        return run_transfer(config).output

    def quickstart() -> Path:
        shutil.copytree(lora(), root / "quickstart" / "run", ignore=shutil.ignore_patterns("checkpoint-*"))
        write_run_config(root / "quickstart", "quickstart", {})
        return root / "quickstart"

    def peft() -> Path:
        (root / "peft").mkdir()
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy(lora() / name, root / "peft")
        return root / "peft"

    builders: dict[str, Callable[[], Path | str]] = {
        "train lora": lora,
        "train qlora": lambda: _train(llama, [collected], root / "qlora", method="qlora"),
        "train full": lambda: _train(llama, [collected], root / "full", method="full"),
        "train chat": chat,
        "adapters merge": lambda: run_merge(MergeConfig(adapter=str(lora()), output=root / "merged")).output,
        "adapters combine": combine,
        "adapters scale": lambda: (
            run_scale(ScaleConfig(adapter=str(lora()), weight=0.5, output=root / "scaled")).output
        ),
        "adapters transfer": transfer,
        "quickstart run": quickstart,
        "embedded base": lambda: "base",
        "HF model folder": lambda: llama,
        "PEFT folder": peft,
    }

    def produce(producer: str) -> str:
        if producer not in built:
            built[producer] = str(builders[producer]())
        return built[producer]

    return produce


def _train(model: Path | str, data: list[Path], output: Path, **overrides) -> Path:
    from personal_copilot.train import OptimSettings, TrainConfig, run_train

    values = {
        "seq_len": 64,
        "max_steps": 2,
        "batch_size": 2,
        "gradient_accumulation_steps": 1,
        "eval_steps": 0,
        "eval_fraction": 0.0 if overrides.get("task") == "chat" else 0.1,
        "save_steps": 100,
        "logging_steps": 1,
        "gradient_checkpointing": False,
        "precision": "fp32",
        "optim": OptimSettings(learning_rate=1e-2, warmup_steps=0),
    }
    config = TrainConfig(model=str(model), data=[str(d) for d in data], output=output, **(values | overrides))
    run_train(config)
    return output


def _vocabulary(producer: str) -> int:
    """The tokenizer size a producer's model has: the base's (the test points PCOPILOT_BASE_MODEL at it), plus the
    chat run's ChatML tokens."""
    return _tokenizer_size(Path(os.environ["PCOPILOT_BASE_MODEL"])) + (
        len(CHAT_TOKENS) if producer == "train chat" else 0
    )


def _tokenizer_size(folder: Path) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(str(folder)))


def _eval_compare(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.evaluate import CompareConfig, FimSettings, LossSettings, run_compare

    fim, loss = FimSettings(num_examples=2, max_new_tokens=2, context_tokens=64), LossSettings(max_rows=2, seq_len=32)
    config = CompareConfig(model=value, data=str(collected), benchmarks=["fim", "loss"], fim=fim, loss=loss)
    config.precision, config.batch_size, config.output = "fp32", 2, out
    report = run_compare(config)
    assert set(report.columns) == {"base", "tuned"} and report.metrics


def _eval_fim(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.evaluate import FimEvalConfig, FimSettings, run_fim

    fim = FimSettings(num_examples=2, max_new_tokens=2, context_tokens=64)
    config = FimEvalConfig(model=value, data=str(collected), fim=fim, precision="fp32")
    config.output = out
    assert run_fim(config).overall.holes == 2


def _eval_loss(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.evaluate import LossConfig, LossSettings, load_for_eval, resolve_model, run_loss

    config = LossConfig(
        model=value, data=str(collected), loss=LossSettings(max_rows=2, seq_len=32), precision="fp32", output=out
    )
    assert run_loss(config).scores.rows == 2
    loaded = load_for_eval(resolve_model(config)[0], "fp32")
    assert len(loaded.tokenizer) == _vocabulary(producer) and loaded.family.name == "starcoder"
    assert loaded.model.config.vocab_size >= len(loaded.tokenizer)  # grown to a chat run's tokenizer


def _serve(config) -> None:
    from personal_copilot.serve.engine import TransformersEngine
    from personal_copilot.serve.generation import GenerationRequest

    engine = TransformersEngine.load(config)
    prepared = engine.prepare(GenerationRequest(prompt="def add(a, b):\n    ", suffix="\n", max_new_tokens=2))
    (result,) = engine.generate([prepared], lambda i, event: True)
    assert result.generated_tokens <= 2 and engine.info.fim is not None and engine.info.fim.family == "starcoder"
    return engine


def _serve_model(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.serve.config import ServeConfig

    engine = _serve(ServeConfig(model=value, max_new_tokens=4, precision="fp32"))
    assert len(engine.tokenizer) == _vocabulary(producer)


def _serve_adapters(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.model_ref import resolve_model_ref
    from personal_copilot.serve.config import ServeConfig

    base = resolve_model_ref(value).base
    engine = _serve(ServeConfig(model=base, adapters=[f"tuned={value}"], max_new_tokens=4, precision="fp32"))
    assert engine.info.adapters == ("tuned",)


def _export_gguf(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.export import GgufConfig, run_export_gguf

    report = run_export_gguf(GgufConfig(model=value, output=out / "model.gguf"))
    assert report.family == "starcoder" and Path(report.output).stat().st_size > 0


def _adapters_merge(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.adapters import MergeConfig, run_merge

    report = run_merge(MergeConfig(adapter=value, output=out / "merged"))
    assert report.verified is not False
    assert _tokenizer_size(out / "merged") == _vocabulary(producer)
    assert read_run_record(out / "merged").stage == "adapters merge"


def _train_model(value: str, producer: str, collected: Path, out: Path) -> None:
    from personal_copilot.train.metrics import read_metrics

    run = _train(value, [collected], out / "run", max_steps=1)
    record = read_run_record(run)
    assert record.family == "starcoder" and _tokenizer_size(run) == _vocabulary(producer)
    assert [m["step"] for m in read_metrics(run / "metrics.jsonl") if "loss" in m] == [1]


CONSUMER_RUNS: dict[str, Callable[[str, str, Path, Path], None]] = {
    "eval compare": _eval_compare,
    "eval fim": _eval_fim,
    "eval loss": _eval_loss,
    "serve --model": _serve_model,
    "serve --adapters": _serve_adapters,
    "export gguf": _export_gguf,
    "adapters merge": _adapters_merge,
    "train --model": _train_model,
}


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_every_output_works_in_every_stage(
    producer: str,
    consumer: str,
    produce: Callable[[str], str],
    tiny_models,
    collected: Path,
    tmp_path: Path,
    monkeypatch,
) -> None:
    monkeypatch.setenv("PCOPILOT_BASE_MODEL", str(tiny_models["llama"]))
    run = CONSUMER_RUNS[consumer]
    refusal = REFUSED.get((producer, consumer))
    value = produce(producer)
    if refusal is None:
        run(value, producer, collected, tmp_path)
    else:
        with pytest.raises(PcopilotError, match=refusal):
            run(value, producer, collected, tmp_path)


def test_the_docs_table_is_the_matrix() -> None:
    table = (Path(__file__).resolve().parent.parent / "docs" / "matrix.md").read_text(encoding="utf-8")
    header = f"| producer \\ consumer | {' | '.join(CONSUMERS)} |"
    assert header in table
    for producer in PRODUCERS:
        cells = ["refused" if (producer, c) in REFUSED else "works" for c in CONSUMERS]
        assert f"| {producer} | {' | '.join(cells)} |" in table, producer
