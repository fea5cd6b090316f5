"""The chat task: ChatML added when missing, loss on assistant tokens only, and a short run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personal_copilot.train import TrainConfig, run_train
from personal_copilot.train.chat import IGNORE_INDEX, ensure_chat_template, tokenize_conversation

CONVERSATION = [
    {"role": "system", "content": "You are a helpful coding assistant."},
    {"role": "user", "content": "How do I reverse a list?"},
    {"role": "assistant", "content": "Use reversed(items) or items[::-1]."},
    {"role": "user", "content": "And sort it?"},
    {"role": "assistant", "content": "sorted(items)"},
]


@pytest.fixture
def chat_tokenizer(tokenizer_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert ensure_chat_template(tokenizer) == ["<|im_start|>", "<|im_end|>"]
    return tokenizer


def test_only_assistant_tokens_are_labelled(chat_tokenizer) -> None:
    row = tokenize_conversation(CONVERSATION, chat_tokenizer, max_length=512)

    labelled = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE_INDEX]
    assert all(label in (IGNORE_INDEX, token) for token, label in zip(row["input_ids"], row["labels"], strict=True))
    text = chat_tokenizer.decode(labelled, skip_special_tokens=False)
    assert text == "Use reversed(items) or items[::-1].<|im_end|>\nsorted(items)<|im_end|>\n"
    prompt = chat_tokenizer.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab == -100])
    assert "How do I reverse a list?" in prompt and "helpful coding assistant" in prompt


@pytest.mark.parametrize(
    "messages",
    [[], [{"role": "user", "content": "no answer"}], [{"content": "no role"}], "not a list", [{"role": "user"}]],
)
def test_malformed_conversations_raise_value_error(chat_tokenizer, messages) -> None:
    with pytest.raises(ValueError):
        tokenize_conversation(messages, chat_tokenizer, max_length=64)


def test_chat_run_skips_bad_rows_and_trains(tiny_models, tokenizer_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    rows = [{"messages": CONVERSATION}] * 12 + [{"messages": [{"role": "user", "content": "unanswered"}]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "chat"
    report = run_train(
        TrainConfig(
            model=str(tiny_models["llama"]),
            data=[str(data)],
            output=out,
            task="chat",
            seq_len=128,
            max_steps=2,
            batch_size=2,
            gradient_accumulation_steps=1,
            save_steps=2,
            gradient_checkpointing=False,
            precision="fp32",
            eval_fraction=0.2,
        )
    )

    assert report.skipped == {"malformed_conversation": 1}
    assert report.steps == 2 and report.task == "chat"
    saved = json.loads((out / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in json.dumps(saved) or "<|im_start|>" in (out / "tokenizer.json").read_text()
