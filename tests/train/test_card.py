"""A run folder's README.md is a real model card (base, data and split, recipe, figures, how to use it), not PEFT's
empty template that `--push_to_hub` would publish."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from personal_copilot.train import TrainConfig
from personal_copilot.train.card import model_card
from personal_copilot.train.report import read_train_report


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def test_a_finished_run_has_a_model_card_with_its_figures(lora_run: Path) -> None:
    card = (lora_run / "README.md").read_text()
    report = json.loads((lora_run / "report.json").read_text())
    config = yaml.safe_load((lora_run / "pcopilot_config.yaml").read_text())["config"]

    assert "More Information Needed" not in card
    assert front_matter(card)["library_name"] == "peft" and "fill-in-the-middle" in front_matter(card)["tags"]
    assert f"fine-tuned from `{report['model']}`" in card
    assert f"- `{report['data'][0]['data']}` (weight 1.0)" in card  # the data source and its split
    assert f"| steps | {report['steps']:,} |" in card and f"| tokens seen | {report['tokens_seen']:,} |" in card
    assert f"| eval loss (held-out data above) | {report['eval_loss']:.4f} |" in card
    assert f"| lora.r | {config['lora']['r']} |" in card
    assert f"| optim.learning_rate | {config['optim']['learning_rate']} |" in card
    assert 'model = PeftModel.from_pretrained(base, "RUN")' in card and "pcopilot serve --model RUN" in card


def test_a_hub_base_is_the_cards_base_model_and_long_lists_are_cut(lora_run: Path) -> None:
    report = read_train_report(lora_run)
    report.model = "bigcode/starcoderbase-1b"
    report.data = [{"data": "data/", "weight": 1.0, "split_by": "file", "eval_files": [f"f{i}.py" for i in range(25)]}]
    card = model_card(TrainConfig(model=report.model, method="full"), report)

    assert front_matter(card)["base_model"] == "bigcode/starcoderbase-1b"
    assert front_matter(card)["library_name"] == "transformers" and "lora.r" not in card
    assert "  - eval files: `f0.py`, " in card and "`f9.py` and 15 more" in card and "f10.py" not in card
    assert 'model = AutoModelForCausalLM.from_pretrained("RUN")' in card


def test_a_local_base_is_not_written_as_a_hub_id(lora_run: Path) -> None:
    assert "base_model" not in front_matter((lora_run / "README.md").read_text())
