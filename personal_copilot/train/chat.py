"""The chat-assistant task: conversations (`messages`: [{role, content}, …]) rendered with the model's chat template
(ChatML added when the tokenizer has none), with the loss on assistant tokens only.

Assistant spans are found by rendering the conversation up to each assistant turn (with the generation prompt) and
through it; this works with any template that renders a conversation's prefix as a prefix of the whole, which every
common template does. Tokens whose characters fall inside an assistant span (its content and end-of-turn marker)
keep their labels; all others get -100.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personal_copilot.errors import PcopilotError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")


def ensure_chat_template(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Gives the tokenizer the ChatML template (and its two special tokens) if it has no chat template.
    Returns the tokens added, so that the caller can resize the model's embeddings."""
    if tokenizer.chat_template:
        return []
    missing = [token for token in CHATML_TOKENS if token not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    tokenizer.chat_template = CHATML_TEMPLATE
    return missing


def _validate(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("`messages` must be a non-empty list of {role, content}")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str) or "role" not in message:
            raise ValueError(f"a message is not {{role, content}}: {message!r:.80}")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("no assistant message to learn from")
    return messages


def assistant_spans(
    messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of each assistant turn in it."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:index], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: index + 1], tokenize=False)
        if not (through.startswith(before) and text.startswith(through)):
            raise PcopilotError("the chat template does not render a conversation's start as a prefix of the whole")
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_conversation(messages: Any, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, list[int]]:
    """`input_ids` and `labels` (-100 outside assistant turns) of one conversation, cut to `max_length`.

    Raises:
        ValueError: the conversation is malformed (the caller skips it and counts it).
    """
    text, spans = assistant_spans(_validate(messages), tokenizer)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = encoding["input_ids"][:max_length]
    labels = [
        token if any(start <= begin < end for start, end in spans) else IGNORE_INDEX
        for token, (begin, _) in zip(input_ids, encoding["offset_mapping"], strict=False)
    ]
    return {"input_ids": input_ids, "labels": labels}
