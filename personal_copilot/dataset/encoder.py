"""A tokenizer bound to its model family: sentinel ids checked once, documents encoded in batches, FIM token layouts.

Document text is always encoded with special tokens treated as plain text, so a file that contains `<fim_prefix>`
(this project's own source does) cannot inject a sentinel id. Sentinel ids come only from the registry. No BOS or EOS
is added here; packing puts end-of-text after every document. Decoding never runs `clean_up_tokenization_spaces`,
which would change code (`from ..x` -> `from..x`).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from personal_copilot.dataset.families import FamilyName, Layout, ModelFamily, detect_family, get_family
from personal_copilot.errors import PcopilotError


def _tokenizer_name(tokenizer: Any) -> str:
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__


def _plain_text_copy(backend: Any) -> Any:
    """A copy of a `tokenizers.Tokenizer` that encodes special-token strings as text, untruncated and unpadded."""
    copy = type(backend).from_str(backend.to_str())
    copy.encode_special_tokens = True
    copy.no_truncation()
    copy.no_padding()
    return copy


class FimEncoder:
    """Encodes documents, FIM examples and FIM prompts to token ids for one tokenizer and model family.

    Args:
        tokenizer: a transformers fast tokenizer (one with a `tokenizer.json`).
        family: registry name or entry; None detects it from the vocabulary.
        require_fim: raise when the tokenizer lacks the family's FIM sentinels (never silently train without FIM).
        repo_context: also require the family's repository-context tokens.

    Raises:
        PcopilotError: not a fast tokenizer; no family found; a needed token missing or not a single token id.
    """

    def __init__(
        self,
        tokenizer: Any,
        family: ModelFamily | FamilyName | None = None,
        *,
        require_fim: bool = True,
        repo_context: bool = False,
    ) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise PcopilotError(
                f"tokenizer {_tokenizer_name(tokenizer)!r} is not a fast tokenizer (no tokenizer.json); "
                "personal-copilot needs one to encode documents in batches"
            )
        self.tokenizer = tokenizer
        self._backend = backend
        if isinstance(family, str):
            family = get_family(family)
        elif family is None:  # get_family raises when no family fits; detect_family returns None
            family = get_family(tokenizer) if require_fim or repo_context else detect_family(tokenizer.get_vocab())
        self.family: ModelFamily | None = family
        self._plain = _plain_text_copy(backend)
        if family is None:
            if tokenizer.eos_token_id is None:
                raise PcopilotError(f"tokenizer {_tokenizer_name(tokenizer)!r} has no end-of-text (eos) token")
            self.eos_id: int = tokenizer.eos_token_id
        else:
            self.eos_id = self._single_id(family.eos, "end-of-text token")
        self.prefix_id: int | None = None
        self.suffix_id: int | None = None
        self.middle_id: int | None = None
        self.end_ids: list[int] = []
        if require_fim:
            missing = [t for t in family.fim.required if self._backend.token_to_id(t) is None]
            if missing:
                raise PcopilotError(
                    f"tokenizer {_tokenizer_name(tokenizer)!r} lacks the FIM sentinels of model family "
                    f"{family.name!r} (missing: {' '.join(missing)}), so it cannot make fill-in-the-middle "
                    "examples. Use the tokenizer of a FIM-trained base model, choose the right --family, build one "
                    "with `pcopilot tokenizer --family ...`, or set --fim.rate 0 to train without FIM"
                )
            self.prefix_id = self._single_id(family.fim.prefix, "FIM prefix sentinel")
            self.suffix_id = self._single_id(family.fim.suffix, "FIM suffix sentinel")
            self.middle_id = self._single_id(family.fim.middle, "FIM middle sentinel")
            if family.fim.end:
                self.end_ids = [self._single_id(family.fim.end, "FIM end-of-middle token")]
        self._context: tuple[list[str | int], str] | None = None
        if repo_context:
            self._context = self._parse_context(family)
        pad = tokenizer.pad_token_id
        if pad is None and family is not None and family.fim.pad:
            pad = self._backend.token_to_id(family.fim.pad)
        self.pad_id: int = self.eos_id if pad is None else pad

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_plain"]  # a pickled tokenizers.Tokenizer forgets `encode_special_tokens` (DataLoader workers)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._plain = _plain_text_copy(self._backend)

    def _single_id(self, token: str, role: str) -> int:
        token_id = self._backend.token_to_id(token)
        if token_id is None:
            raise PcopilotError(f"tokenizer {_tokenizer_name(self.tokenizer)!r} has no {role} {token!r}")
        encoded = self._backend.encode(token, add_special_tokens=False).ids
        if encoded != [token_id]:
            raise PcopilotError(
                f"{role} {token!r} of tokenizer {_tokenizer_name(self.tokenizer)!r} encodes to {len(encoded)} ids "
                f"{encoded}, not to its single id {token_id}: it must be an added (special) token"
            )
        return token_id

    def _parse_context(self, family: ModelFamily | None) -> tuple[list[str | int], str]:
        """The context before the FIM sentinels as text templates and token ids, and the text put before a document."""
        if family is None or family.repo_context is None:
            name = family.name if family else "unknown"
            raise PcopilotError(
                f"model family {name!r} has no repository-context tokens; --repo_context needs qwen or starcoder"
            )
        outer, inner = family.repo_context
        tokens = {"repo_name": family.repo_name, "file_sep": family.file_sep}
        pieces: list[str | int] = []
        text = ""
        for literal, name, _, _ in string.Formatter().parse(outer):
            text += literal
            if name in tokens:
                pieces += [text] if text else []
                pieces.append(self._single_id(tokens[name], f"repository-context token {tokens[name]!r}"))
                text = ""
            elif name:
                text += "{" + name + "}"
        pieces += [text] if text else []
        return pieces, inner

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (special-token strings in the text stay plain text; no BOS/EOS)."""
        return [encoding.ids for encoding in self._plain.encode_batch_fast(list(texts), add_special_tokens=False)]

    def encode_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each text and the character offset where each token starts."""
        encodings = self._plain.encode_batch(list(texts), add_special_tokens=False)
        return [(e.ids, [start for start, _ in e.offsets]) for e in encodings]

    def fim_ids(
        self, layout: Layout, prefix: list[int], suffix: list[int], middle: list[int] | None = None
    ) -> list[int]:
        """A FIM example's ids in `layout`; without `middle`, the prompt a model completes with the middle."""
        if self.prefix_id is None:
            raise PcopilotError("this FimEncoder was built with require_fim=False: it has no FIM sentinels")
        if layout == "psm":
            ids = [self.prefix_id, *prefix, self.suffix_id, *suffix, self.middle_id]
        else:
            ids = [self.prefix_id, self.suffix_id, *suffix, self.middle_id, *prefix]
        return ids if middle is None else ids + middle + self.end_ids

    def prompt_ids(self, prefix: str, suffix: str, layout: Layout = "psm") -> list[int]:
        """The ids of a FIM prompt for serving and evaluation: the model's continuation is the middle."""
        prefix_ids, suffix_ids = self.encode([prefix, suffix])
        return self.fim_ids(layout, prefix_ids, suffix_ids)

    def context(self, repo_id: str, file_path: str) -> tuple[list[int], str]:
        """Repository context of a document: ids put before it and text prepended to its content."""
        if self._context is None:
            return [], ""
        pieces, inner = self._context
        texts = [p.format(repo_id=repo_id, file_path=file_path) for p in pieces if isinstance(p, str)]
        encoded = iter(self.encode(texts))
        ids = [token for p in pieces for token in ([p] if isinstance(p, int) else next(encoded))]
        return ids, inner.format(repo_id=repo_id, file_path=file_path)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids` with special tokens visible and no clean-up of spaces."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
