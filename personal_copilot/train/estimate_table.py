"""The sizing table of docs/laptop_to_gpu.md, written by `pcopilot estimate` itself from each config in configs/train/
(scratch models aside: they run on a laptop CPU), so that the docs say what `estimate` says:

    python -m personal_copilot.train.estimate_table            # rewrites the table between its markers
    python -m personal_copilot.train.estimate_table --check    # exit status 1 when the doc is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from personal_copilot.errors import PcopilotError
from personal_copilot.modeling import is_scratch
from personal_copilot.train.estimate import GPUS, TIGHT, fewest_gpus, memory_per_gpu
from personal_copilot.train.estimate_config import EstimateConfig
from personal_copilot.train.model_shape import read_model_shape

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "laptop_to_gpu.md"
CONFIGS = ROOT / "configs" / "train"
BEGIN = "<!-- sizing table: written by `python -m personal_copilot.train.estimate_table`, do not edit -->"
END = "<!-- end of sizing table -->"
METHODS = {"lora": "LoRA", "qlora": "QLoRA (NF4)", "full": "full"}


def read_train_config(path: Path) -> EstimateConfig:
    """A `pcopilot train` YAML as the settings of an estimate, read as `pcopilot estimate --config PATH` reads it."""
    import jsonargparse

    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(EstimateConfig, nested_key=None)
    namespace = parser.instantiate(parser.parse_path(str(path)))
    values = namespace.as_dict() if hasattr(namespace, "as_dict") else dict(vars(namespace))
    values.pop("__path__", None)
    return EstimateConfig(**values)


def hardware(cfg: EstimateConfig) -> tuple[float, str]:
    """(GB on one GPU, the smallest hardware that holds the run): one card, and FSDP over 80 GB cards when it takes
    more than 80 GB."""
    shape = read_model_shape(cfg.model, cfg.lora, cfg.scratch_vocab_size)
    total = memory_per_gpu(shape, cfg, 1, "fsdp", cfg.gradient_checkpointing).total
    needed = fewest_gpus(shape, cfg, "A100-80GB")
    sharded = f"{needed} × 80 GB GPUs (FSDP)" if needed else "more than 64 × 80 GB GPUs"
    for size in sorted({gpu.memory_gb for gpu in GPUS.values()}):
        if total <= size:
            names = ", ".join(name for name, gpu in GPUS.items() if gpu.memory_gb == size)
            tight = f", tight: over {TIGHT:.0%}" if total > TIGHT * size else ""
            return total, f"one {size:g} GB GPU ({names}{tight})" + (f", or {sharded}" if size > 80 else "")
    return total, sharded


def sizing_table(configs: Path = CONFIGS) -> str:
    """The Markdown table: one row per config in `configs` (a folder per model)."""
    rows = [
        "| config | model | method | micro-batch | GB on one GPU | hardware (from `pcopilot estimate`) |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(configs.glob("*/*.yaml")):
        cfg = read_train_config(path)
        if is_scratch(cfg.model):
            continue
        method = METHODS[cfg.method] + (f" r {cfg.lora.r}" if cfg.method != "full" else "")
        checkpointing = ", GC" if cfg.gradient_checkpointing else ""
        total, fits = hardware(cfg)
        rows.append(
            f"| `{path.relative_to(configs.parent.parent)}` | {cfg.model} | {method} | "
            f"{cfg.batch_size} × {cfg.seq_len}{checkpointing} | {total:.1f} | {fits} |"
        )
    return "\n".join(rows)


def with_table(doc_text: str, table: str) -> str:
    """`doc_text` with `table` between the markers."""
    if BEGIN not in doc_text or END not in doc_text:
        raise PcopilotError(f"the doc has no sizing-table markers: add the lines\n{BEGIN}\n{END}")
    head, _, rest = doc_text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    updated = with_table(text, sizing_table())
    if "--check" in argv:
        if updated != text:
            print(f"{DOC} is out of date: run python -m personal_copilot.train.estimate_table", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    print(f"wrote the sizing table of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
