"""A request's prompt as token ids within the context window, built with the same FIM encoder training used.

- `prompt` + `suffix`: the server builds the FIM prompt from the family's sentinels (`FimEncoder.fim_ids`, as in
  training). A plain `prompt` that is a whole PSM prompt built by a client with the family's sentinels (llm-ls,
  Continue) is split back into prefix and suffix and built the same way, so that it gets the same truncation and
  post-processing.
- Too long for `--max_input_tokens` (or a TGI `truncate`): with `--prompt_overflow truncate`, a FIM prompt loses the
  start of its prefix and the end of its suffix (the suffix keeps at least a quarter of the window when it has that
  much; the sentinels always stay), a plain prompt loses its start. Chat prompts, and plain prompts holding special
  tokens (a FIM prompt in a layout we cannot split), are never cut: they get a 422.
- Other files of the project (llama.cpp's `input_extra`) go before the FIM prompt, in llama.cpp's layout:
  `{file_sep}{filename}\n{text}` for families with a file separator, else the texts separated by `--- snip ---`
  lines. They are context, dropped whole, oldest first, when the window is short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from personal_copilot.dataset import FimEncoder, Layout, ModelFamily, TokenHealer
from personal_copilot.errors import PcopilotError
from personal_copilot.serve.generation import (
    ContextFile,
    FimTokens,
    GenerationRequest,
    ModelInfo,
    PreparedRequest,
    RequestError,
)

_PREFIX_MARK, _SUFFIX_MARK = "\x00", "\x01"
CHUNK_SEPARATOR = "\n\n--- snip ---\n\n"
DEFAULT_MAX_NEW_TOKENS = 512


def fim_tokens(family: ModelFamily) -> FimTokens:
    """The family's FIM prompt as the three strings a text-prompt client puts around prefix and suffix (PSM)."""
    template = family.fim_prompt(_PREFIX_MARK, _SUFFIX_MARK, "psm")
    head, rest = template.split(_PREFIX_MARK)
    between, tail = rest.split(_SUFFIX_MARK)
    stop = tuple(dict.fromkeys((family.eos, *family.stop)))
    return FimTokens(family.name, head, between, tail, family.eos, stop, family.file_sep)


def split_fim_prompt(prompt: str, tokens: FimTokens) -> tuple[str, str] | None:
    """(prefix, suffix) of a client-built PSM prompt `{prefix tok}P{suffix tok}S{middle tok}`; None otherwise."""
    if not (prompt.startswith(tokens.prefix) and prompt.endswith(tokens.middle)):
        return None
    body = prompt[len(tokens.prefix) : len(prompt) - len(tokens.middle)]
    prefix, found, suffix = body.partition(tokens.suffix)
    return (prefix, suffix) if found else None


def share_window(prefix: list[int], suffix: list[int], room: int) -> tuple[list[int], list[int]]:
    """The end of the prefix and the start of the suffix that fit in `room` tokens together."""
    if len(prefix) + len(suffix) <= room:
        return prefix, suffix
    keep_suffix = min(len(suffix), room // 4)
    keep_prefix = min(len(prefix), room - keep_suffix)
    keep_suffix = min(len(suffix), room - keep_prefix)
    return prefix[len(prefix) - keep_prefix :], suffix[:keep_suffix]


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    prefix: str | None = None
    """The FIM prefix and suffix (None for plain and chat prompts)."""
    suffix: str | None = None
    truncated: int = 0
    healed: str = ""
    """The text of the prefix's last token, left out of `ids` for the completion to write (token healing)."""


class PromptBuilder:
    """Builds the token ids of requests for one tokenizer and model family.

    Args:
        encoder: the tokenizer bound to its family (None family: no FIM).
        max_input_tokens: the window a prompt must fit in.
        overflow: what a longer prompt gets (truncate or reject).
        layout: FIM layout of the prompts the server builds.
        render_chat: renders (role, content) messages with the chat template (None: no chat).
        healer: heals the FIM prompts the server builds (`dataset.healing`; None: the prefix is sent whole).
    """

    def __init__(
        self,
        encoder: FimEncoder,
        max_input_tokens: int,
        overflow: Literal["truncate", "reject"] = "truncate",
        layout: Layout = "psm",
        render_chat: Callable[[Sequence[tuple[str, str]]], str] | None = None,
        healer: TokenHealer | None = None,
    ) -> None:
        self.encoder = encoder
        self.healer = healer
        self.fim = fim_tokens(encoder.family) if encoder.prefix_id is not None and encoder.family else None
        self.max_input_tokens = max_input_tokens
        self.overflow = overflow
        self.layout = layout
        self.render_chat = render_chat
        backend = encoder.tokenizer.backend_tokenizer
        self._with_specials: Any = type(backend).from_str(backend.to_str())  # this thread's own copy
        self._with_specials.no_truncation()
        self._with_specials.no_padding()
        self._special_ids = set(encoder.tokenizer.all_special_ids)
        file_sep = encoder.family.file_sep if encoder.family else None
        self._file_sep_id = self._with_specials.token_to_id(file_sep) if file_sep else None

    def encode_text(self, text: str) -> list[int]:
        """Ids of text in which special-token strings are special tokens (what a client-built prompt means)."""
        return self._with_specials.encode(text, add_special_tokens=False).ids

    def build(self, request: GenerationRequest) -> Prompt:
        """The prompt of a request, fitted to the window.

        Raises:
            RequestError: 422 for a prompt over the window that may not be cut, FIM on a model without FIM tokens,
                chat on a model without a chat template, or an empty prompt.
        """
        window = self.max_input_tokens if request.truncate is None else min(request.truncate, self.max_input_tokens)
        may_cut = self.overflow == "truncate" or request.truncate is not None
        if request.messages is not None:
            return self._chat(request.messages, window)
        prefix, suffix = request.prompt, request.suffix
        if suffix is None and self.fim is not None:
            prefix, suffix = split_fim_prompt(request.prompt, self.fim) or (prefix, None)
        if suffix is not None:
            return self._fim(prefix, suffix, request.context_files, window, may_cut)
        ids = self.encode_text(request.prompt)
        if not ids:
            raise RequestError("the prompt is empty; send the text to continue", field="prompt")
        if len(ids) <= window:
            return Prompt(ids)
        if not may_cut:
            raise self._too_long("prompt", len(ids), window)
        if self._special_ids.intersection(ids):
            raise RequestError(
                f"the prompt has {len(ids)} tokens, over the limit of {window}, and holds special tokens in a "
                "layout the server cannot cut safely; send a shorter prompt, or prefix and suffix separately",
                field="prompt",
            )
        return Prompt(ids[len(ids) - window :], truncated=len(ids) - window)

    def _chat(self, messages: Sequence[tuple[str, str]], window: int) -> Prompt:
        if self.render_chat is None:
            raise RequestError(
                "this model has no chat template; serve a chat-trained run or pass --chat_template FILE",
                field="messages",
            )
        ids = self.encode_text(self.render_chat(messages))
        if len(ids) > window:
            raise RequestError(
                f"the conversation has {len(ids)} tokens, over the limit of {window} (--max_input_tokens); "
                "send fewer or shorter messages",
                field="messages",
            )
        return Prompt(ids)

    def _fim(self, prefix: str, suffix: str, files: Sequence[ContextFile], window: int, may_cut: bool) -> Prompt:
        if self.fim is None:
            raise RequestError(
                "this model has no FIM tokens, so it cannot fill in the middle; send the prompt without a suffix, "
                "or serve a FIM-trained model (--family names the sentinels when detection fails)",
                field="suffix",
            )
        prefix_ids, suffix_ids = self.encoder.encode([prefix, suffix])
        prefix_ids, healed = self.healer.split(prefix_ids) if self.healer else (prefix_ids, "")
        room = window - 3
        if len(prefix_ids) + len(suffix_ids) > room and not may_cut:
            raise self._too_long("prompt", len(prefix_ids) + len(suffix_ids) + 3, window)
        kept_prefix, kept_suffix = share_window(prefix_ids, suffix_ids, max(room, 0))
        truncated = len(prefix_ids) + len(suffix_ids) - len(kept_prefix) - len(kept_suffix)
        context, dropped = self._context(files, room - len(kept_prefix) - len(kept_suffix))
        ids = context + self.encoder.fim_ids(self.layout, kept_prefix, kept_suffix)
        return Prompt(ids, prefix, suffix, truncated + dropped, healed)

    def _context(self, files: Sequence[ContextFile], room: int) -> tuple[list[int], int]:
        """Ids of the context files that fit in `room` (the newest kept) and the count of tokens dropped."""
        if not files:
            return [], 0
        if self._file_sep_id is not None:
            texts = [f"{f.filename}\n{f.text}" for f in files]
            chunks = [[self._file_sep_id, *ids] for ids in self.encoder.encode(texts)]
        else:
            chunks = self.encoder.encode([CHUNK_SEPARATOR + f.text for f in files])
        kept: list[list[int]] = []
        for chunk in reversed(chunks):
            if len(chunk) > room:
                break
            kept.insert(0, chunk)
            room -= len(chunk)
        dropped = sum(len(c) for c in chunks[: len(chunks) - len(kept)])
        return [token for chunk in kept for token in chunk], dropped

    @staticmethod
    def _too_long(field: str, tokens: int, window: int) -> RequestError:
        return RequestError(
            f"the {field} has {tokens} tokens, over the limit of {window} (--max_input_tokens); send less, or "
            "serve with --prompt_overflow truncate",
            field=field,
        )


def prepare_request(info: ModelInfo, builder: PromptBuilder, request: GenerationRequest) -> PreparedRequest:
    """A request checked against the server's limits, its adapter chosen and its prompt built (any engine)."""
    adapter = info.adapter_for(request.model)
    limit = info.max_new_tokens
    if request.max_new_tokens is not None and request.max_new_tokens > limit:
        raise RequestError(
            f"max_new_tokens {request.max_new_tokens} is over this server's limit of {limit} (--max_new_tokens)",
            field="max_new_tokens",
        )
    prompt = builder.build(request)
    return PreparedRequest(
        request=request,
        prompt_ids=prompt.ids,
        adapter=adapter,
        max_new_tokens=request.max_new_tokens or limit,
        prefix=prompt.prefix,
        suffix=prompt.suffix,
        truncated_tokens=prompt.truncated,
        healed=prompt.healed,
    )


def serving_limits(context: int, max_new_tokens: int | None, max_input_tokens: int | None) -> tuple[int, int]:
    """(max input tokens, max new tokens) within the model's context (--max_new_tokens, --max_input_tokens).

    Raises:
        PcopilotError: the two do not fit the context together.
    """
    max_new = max_new_tokens or min(DEFAULT_MAX_NEW_TOKENS, context // 2)
    max_input = max_input_tokens or context - max_new
    if max_input + max_new > context or max_input < 8:
        raise PcopilotError(
            f"--max_input_tokens {max_input} + --max_new_tokens {max_new} does not fit the model's context of "
            f"{context} tokens (and prompts need at least 8); lower --max_new_tokens or --max_input_tokens"
        )
    return max_input, max_new


def chat_renderer(tokenizer: Any) -> Callable[[Sequence[tuple[str, str]]], str] | None:
    """Renders (role, content) messages with the tokenizer's chat template; None without a template."""
    if not tokenizer.chat_template:
        return None

    def render(messages: Sequence[tuple[str, str]]) -> str:
        conversation = [{"role": role, "content": content} for role, content in messages]
        return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    return render
