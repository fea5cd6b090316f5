"""The run folder's README.md: a model card that says what was trained, on what, how, and how well (instead of
PEFT's empty template, which `--push_to_hub` would publish)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from personal_copilot.configs import to_plain
from personal_copilot.train.config import TrainConfig
from personal_copilot.train.report import TrainReport

CARD_FILE = "README.md"
_LISTED = 10
"""Items of a list (held-out repositories or files) written out before "and N more"."""


def write_model_card(out: Path, config: TrainConfig, report: TrainReport) -> Path:
    """Writes `out/README.md` from the run's config and report; returns its path."""
    path = Path(out) / CARD_FILE
    path.write_text(model_card(config, report), encoding="utf-8")
    return path


def model_card(config: TrainConfig, report: TrainReport) -> str:
    adapter = config.method in ("lora", "qlora")
    front = ["---", "library_name: " + ("peft" if adapter else "transformers"), "pipeline_tag: text-generation"]
    if _is_hub_id(report.model):
        front.append(f"base_model: {report.model}")
    front += ["tags:", "- personal-copilot", "- code", f"- {config.method}"]
    front += ["- fill-in-the-middle"] if config.task == "fim" else []
    front.append("---")
    what = "a LoRA adapter" if config.method == "lora" else "a QLoRA adapter (4-bit base)" if adapter else "a model"
    task = "fill-in-the-middle code completion" if config.task == "fim" else "chat on conversations"
    lines = [
        *front,
        "",
        f"# {Path(report.output).name}",
        "",
        f"{what[0].upper() + what[1:]} for {task}, fine-tuned from `{report.model}` on a team's own code with "
        "personal-copilot (`pcopilot train`).",
        "",
        "## Training data",
        "",
        *_data_lines(report.data),
        *(f"- skipped: {reason}: {count:,}" for reason, count in report.skipped.items()),
        "",
        "## Recipe",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in _recipe(config, report)),
        "",
        "## Results",
        "",
        "| measure | value |",
        "|---|---|",
        f"| steps | {report.steps:,} |",
        f"| tokens seen | {report.tokens_seen:,} |",
        f"| train loss (last log) | {_loss(report.train_loss)} |",
        f"| eval loss (held-out data above) | {_loss(report.eval_loss)} |",
        f"| trainable / total parameters | {report.trainable_parameters:,} / {report.total_parameters:,} |",
        f"| training time | {report.seconds:,.0f} s on {report.world_size} process(es), "
        f"{report.tokens_per_second:,.0f} tokens/s |",
        "",
        "`metrics.jsonl` has the loss at every logging step, `loss.png` plots it, `report.json` holds these",
        "figures and `pcopilot_config.yaml` the whole resolved config. `pcopilot eval compare --model RUN` measures",
        "base vs tuned.",
        "",
        "## Use",
        "",
        "```bash",
        "pcopilot serve --model RUN            # TGI / OpenAI / Ollama HTTP APIs for editors",
        "pcopilot export gguf --model RUN --output model.gguf   # for llama.cpp / Ollama",
        "```",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        *(
            [
                "from peft import PeftModel",
                "",
                f'base = AutoModelForCausalLM.from_pretrained("{report.model}")',
                'model = PeftModel.from_pretrained(base, "RUN")',
            ]
            if adapter
            else ["", 'model = AutoModelForCausalLM.from_pretrained("RUN")']
        ),
        'tokenizer = AutoTokenizer.from_pretrained("RUN")',
        "```",
        "",
        "`RUN` is this folder (or its Hub id once pushed).",
        "",
    ]
    return "\n".join(lines)


def _recipe(config: TrainConfig, report: TrainReport) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("method / task", f"{config.method} / {config.task}"),
        ("FIM family", report.family or "-"),
        ("sequence length", config.seq_len),
        ("batch size x accumulation", f"{config.batch_size} x {config.gradient_accumulation_steps}"),
        ("max steps", config.max_steps),
        ("precision", config.precision),
        ("seed", config.seed),
    ]
    if config.method in ("lora", "qlora"):
        rows += [(f"lora.{key}", value) for key, value in to_plain(config.lora).items()]
    rows += [(f"optim.{key}", value) for key, value in to_plain(config.optim).items()]
    if config.task == "fim":
        rows += [(f"fim.{key}", value) for key, value in to_plain(config.fim).items()]
    return [(name, "-" if value is None else "the family's preset" if value == [] else value) for name, value in rows]


def _data_lines(splits: list[dict[str, Any]]) -> list[str]:
    """One bullet per --data source with its split (whatever keys the split records)."""
    if not splits:
        return ["- (not recorded)"]
    lines = []
    for split in splits:
        lines.append(f"- `{split.get('data', '?')}` (weight {split.get('weight', 1.0)})")
        for key, value in split.items():
            if key not in ("data", "weight"):
                lines.append(f"  - {key.replace('_', ' ')}: {_listed(value)}")
    return lines


def _listed(value: Any) -> str:
    if not isinstance(value, list):
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    if not value:
        return "none"
    more = f" and {len(value) - _LISTED:,} more" if len(value) > _LISTED else ""
    return ", ".join(f"`{item}`" for item in value[:_LISTED]) + more


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _is_hub_id(model: str) -> bool:
    """`owner/name` that is not a local folder (the card's `base_model` must be a Hub id)."""
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", model)) and not Path(model).exists()
