"""The model-family registry: per family, the FIM sentinel tokens and their order, the end-of-text and stop tokens,
the file separator and the repository-context format. Training (this stage) and serving read the same entries, so
the prompts a model is trained on and the prompts it is served agree by construction.

Token strings are the tokenizer's vocabulary entries, exactly as the published tokenizers spell them (CodeLlama's
`▁<PRE>` carries the SentencePiece space; DeepSeek's bars are full-width `｜` and its spaces `▁`). A family is
picked by name or detected from a tokenizer's vocabulary; nothing here imports a tokenizer library.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from personal_copilot.errors import PcopilotError

FamilyName = Literal["starcoder", "santacoder", "qwen", "codellama", "deepseek", "codegemma"]
Layout = Literal["psm", "spm"]


@dataclass(frozen=True)
class FimSentinels:
    """The fill-in-the-middle sentinel tokens of a family.

    Layouts (Bavarian et al. 2022, as in the original blog): PSM is `prefix P suffix S middle M`, i.e.
    `{prefix}{p}{suffix}{s}{middle}{m}`; SPM ("variant 2") is `{prefix}{suffix}{s}{middle}{p}{m}`.
    """

    prefix: str
    """Starts the prefix (DeepSeek calls it `fim▁begin`)."""
    suffix: str
    """Starts the suffix (DeepSeek: `fim▁hole`)."""
    middle: str
    """Starts the middle, the part the model writes (DeepSeek: `fim▁end`)."""
    pad: str | None = None
    """FIM padding token, when the family has one."""
    end: str | None = None
    """Ends the middle when the family uses a token other than end-of-text for it (CodeLlama `▁<EOT>`)."""
    prompt_psm: str | None = None
    """Text form of a PSM prompt, with `{prefix}` and `{suffix}`, when it is not the plain token concatenation
    (CodeLlama's spaces); it is what text-prompt clients (Ollama templates, editor plugins) send."""
    prompt_spm: str | None = None
    """Text form of an SPM prompt, like `prompt_psm`."""

    @property
    def required(self) -> tuple[str, ...]:
        """The tokens without which a tokenizer cannot make FIM examples of this family."""
        return (self.prefix, self.suffix, self.middle) + ((self.end,) if self.end else ())


@dataclass(frozen=True)
class ModelFamily:
    """One registry entry."""

    name: FamilyName
    models: str
    """Which published models use this entry."""
    fim: FimSentinels
    eos: str
    """End of text: appended after every document (and after the middle of a FIM example)."""
    stop: tuple[str, ...]
    """Tokens that end a completion when serving (and are removed from its text)."""
    file_sep: str | None = None
    """Token between files of a repository."""
    repo_name: str | None = None
    """Token before a repository name."""
    repo_context: tuple[str, str] | None = None
    """Repository context as (before the FIM sentinels, prepended to the document text), with placeholders
    `{repo_name}` / `{file_sep}` (the tokens) and `{repo_id}` / `{file_path}` (text); None when the family has none."""

    @property
    def special_tokens(self) -> list[str]:
        """Every token of the entry, end-of-text first: what a tokenizer for this family must hold."""
        tokens = [self.eos, self.fim.prefix, self.fim.middle, self.fim.suffix, self.fim.pad, self.fim.end]
        tokens += [self.repo_name, self.file_sep, *self.stop]
        return list(dict.fromkeys(t for t in tokens if t))

    def fim_prompt(self, prefix: str, suffix: str, layout: Layout = "psm") -> str:
        """The text of a FIM prompt (the model continues with the middle), as a text-prompt client sends it."""
        template = self.fim.prompt_psm if layout == "psm" else self.fim.prompt_spm
        if template is not None:
            return template.format(prefix=prefix, suffix=suffix)
        if layout == "psm":
            return f"{self.fim.prefix}{prefix}{self.fim.suffix}{suffix}{self.fim.middle}"
        return f"{self.fim.prefix}{self.fim.suffix}{suffix}{self.fim.middle}{prefix}"


FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily(
            name="starcoder",
            models="StarCoder, StarCoder2, StarCoderBase, tiny_starcoder, stable-code, Granite-Code",
            fim=FimSentinels("<fim_prefix>", "<fim_suffix>", "<fim_middle>", pad="<fim_pad>"),
            eos="<|endoftext|>",
            stop=("<|endoftext|>", "<file_sep>"),
            file_sep="<file_sep>",
            repo_name="<repo_name>",
            # StarCoder2: `<repo_name>repo<file_sep><fim_prefix>path\n{prefix}<fim_suffix>…` (path inside the file).
            repo_context=("{repo_name}{repo_id}{file_sep}", "{file_path}\n"),
        ),
        ModelFamily(
            name="santacoder",
            models="SantaCoder (hyphenated sentinels)",
            fim=FimSentinels("<fim-prefix>", "<fim-suffix>", "<fim-middle>", pad="<fim-pad>"),
            eos="<|endoftext|>",
            stop=("<|endoftext|>",),
        ),
        ModelFamily(
            name="qwen",
            models="Qwen2.5-Coder, Qwen3-Coder (base checkpoints)",
            fim=FimSentinels("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", pad="<|fim_pad|>"),
            eos="<|endoftext|>",
            stop=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>"),
            file_sep="<|file_sep|>",
            repo_name="<|repo_name|>",
            # Qwen2.5-Coder: `<|repo_name|>repo\n<|file_sep|>path\n<|fim_prefix|>{prefix}…`.
            repo_context=("{repo_name}{repo_id}\n{file_sep}{file_path}\n", ""),
        ),
        ModelFamily(
            name="codellama",
            models="CodeLlama 7B/13B (base and Python; 34B/70B were not trained on FIM)",
            fim=FimSentinels(
                "▁<PRE>",
                "▁<SUF>",
                "▁<MID>",
                end="▁<EOT>",
                prompt_psm="<PRE> {prefix} <SUF>{suffix} <MID>",
                prompt_spm="<PRE> <SUF>{suffix} <MID> {prefix}",
            ),
            eos="</s>",
            stop=("▁<EOT>", "</s>"),
        ),
        ModelFamily(
            name="deepseek",
            models="DeepSeek-Coder v1 / V2 base (the instruct checkpoints were not trained on FIM)",
            fim=FimSentinels("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
            eos="<｜end▁of▁sentence｜>",
            stop=("<｜end▁of▁sentence｜>", "<|EOT|>"),
        ),
        ModelFamily(
            name="codegemma",
            models="CodeGemma 2B / 7B (base)",
            fim=FimSentinels("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", end="<|file_separator|>"),
            eos="<eos>",
            stop=("<|file_separator|>", "<eos>"),
            file_sep="<|file_separator|>",
        ),
    )
}
_ALIASES = {
    "starcoder2": "starcoder",
    "starcoderbase": "starcoder",
    "tiny_starcoder": "starcoder",
    "stable-code": "starcoder",
    "granite-code": "starcoder",
    "qwen2.5-coder": "qwen",
    "qwen3-coder": "qwen",
    "code-llama": "codellama",
    "deepseek-coder": "deepseek",
}


def detect_family(vocabulary: Collection[str]) -> ModelFamily | None:
    """The family whose FIM sentinels and end-of-text token are all in `vocabulary`; None when no family matches.

    Raises:
        PcopilotError: several families match (name one with `--family`).
    """
    matches = [f for f in FAMILIES.values() if all(t in vocabulary for t in (*f.fim.required, f.eos))]
    if len(matches) > 1:
        names = ", ".join(f.name for f in matches)
        raise PcopilotError(f"the tokenizer's vocabulary fits several model families ({names}); choose with --family")
    return matches[0] if matches else None


def get_family(tokenizer_or_name: Any) -> ModelFamily:
    """The registry entry named (`"qwen"`, `"starcoder2"`, …) or detected from a tokenizer's vocabulary.

    Raises:
        PcopilotError: unknown name, or a tokenizer that has no family's FIM sentinels.
    """
    if isinstance(tokenizer_or_name, str):
        key = tokenizer_or_name.lower()
        family = FAMILIES.get(_ALIASES.get(key, key))
        if family is None:
            known = ", ".join([*FAMILIES, *_ALIASES])
            raise PcopilotError(f"unknown model family {tokenizer_or_name!r}; known: {known}")
        return family
    family = detect_family(tokenizer_or_name.get_vocab())
    if family is None:
        name = getattr(tokenizer_or_name, "name_or_path", "") or type(tokenizer_or_name).__name__
        known = "; ".join(f"{f.name}: {' '.join(f.fim.required)}" for f in FAMILIES.values())
        raise PcopilotError(
            f"tokenizer {name!r} has the FIM sentinels of no known model family ({known}). Use a FIM-trained base "
            "model's tokenizer, build one with `pcopilot tokenizer`, or set --fim.rate 0 to train without FIM"
        )
    return family


END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>")
"""Chat templates' end-of-turn tokens: a completion ends there too."""


def stop_token_ids(
    tokenizer: Any, family: ModelFamily | None, eos_ids: int | list[int] | None = None
) -> frozenset[int]:
    """The token ids that end a completion of a model (serving and evaluation alike): every special token of the
    tokenizer, its end of text, the family's tokens, chat end-of-turn tokens and the checkpoint's own `eos_ids`."""
    ids = set(tokenizer.all_special_ids)
    ids.update([eos_ids] if isinstance(eos_ids, int) else eos_ids or [])
    vocabulary = tokenizer.get_vocab()
    names = [*END_OF_TURN_TOKENS, *(family.special_tokens if family else [])]
    ids.update(vocabulary[name] for name in names if name in vocabulary)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return frozenset(ids)
