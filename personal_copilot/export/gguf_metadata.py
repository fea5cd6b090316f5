"""FIM token ids in GGUF metadata: the keys llama.cpp's `/infill`, llama.vscode and Ollama read, the ids a model
family's tokenizer gives them, and reading a GGUF's header back to check them.

llama.cpp finds FIM tokens at load time by their text, from a fixed list (Qwen's, StarCoder's, CodeLlama's, ...);
it misses StarCoder2's `<file_sep>` / `<repo_name>` and any family not on the list. Written into the header, the ids
are read as they are. Both key spellings are written: `fim_{pre,suf,mid}_token_id` (current) and
`{prefix,suffix,middle}_token_id` (what llama.cpp builds before the rename, still in use, read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from personal_copilot.dataset import ModelFamily, detect_family
from personal_copilot.errors import PcopilotError

_REQUIRED_ROLES = ("prefix", "suffix", "middle", "eot")


def fim_keys() -> dict[str, tuple[str, ...]]:
    """GGUF keys per FIM role (prefix, suffix, middle, pad, repo, file_sep, eot)."""
    from gguf import Keys

    tokenizer = Keys.Tokenizer
    return {
        "prefix": (tokenizer.FIM_PRE_ID, tokenizer.PREFIX_ID),
        "suffix": (tokenizer.FIM_SUF_ID, tokenizer.SUFFIX_ID),
        "middle": (tokenizer.FIM_MID_ID, tokenizer.MIDDLE_ID),
        "pad": (tokenizer.FIM_PAD_ID,),
        "repo": (tokenizer.FIM_REP_ID,),
        "file_sep": (tokenizer.FIM_SEP_ID,),
        "eot": (tokenizer.EOT_ID,),
    }


def fim_tokens(family: ModelFamily) -> dict[str, str | None]:
    """The token text of each FIM role in a family (None where the family has no such token)."""
    return {
        "prefix": family.fim.prefix,
        "suffix": family.fim.suffix,
        "middle": family.fim.middle,
        "pad": family.fim.pad,
        "repo": family.repo_name,
        "file_sep": family.file_sep,
        "eot": family.fim.end or family.eos,
    }


def fim_metadata(vocabulary: Mapping[str, int], family: ModelFamily) -> dict[str, int]:
    """GGUF key -> token id for every FIM role of `family` whose token is in `vocabulary`.

    Raises:
        PcopilotError: the vocabulary lacks the prefix, suffix, middle or end-of-middle token.
    """
    keys = fim_keys()
    metadata: dict[str, int] = {}
    for role, token in fim_tokens(family).items():
        if token is None:
            continue
        if token not in vocabulary:
            if role in _REQUIRED_ROLES:
                raise PcopilotError(f"the vocabulary has no {role} token {token!r} of model family {family.name!r}")
            continue
        metadata.update(dict.fromkeys(keys[role], vocabulary[token]))
    return metadata


@dataclass(frozen=True)
class GgufInfo:
    """What the export reads back from a GGUF header."""

    path: Path
    architecture: str
    context_length: int
    tokens: list[str]
    token_ids: dict[str, int]
    """Every `tokenizer.ggml.*_token_id` key and its value."""
    pre_tokenizer: str | None

    def family(self) -> ModelFamily:
        """The model family whose FIM tokens and end-of-text token are in the GGUF's vocabulary.

        Raises:
            PcopilotError: no family's FIM tokens are in the vocabulary.
        """
        family = detect_family(set(self.tokens))
        if family is None:
            raise PcopilotError(
                f"{self.path} has the FIM tokens of no known model family, so it cannot fill in the middle "
                "(llama.cpp's /infill answers 501, editor plugins get no completions). Export a FIM-trained model"
            )
        return family


def read_gguf(path: Path) -> GgufInfo:
    """Reads the header of a GGUF file with the gguf package.

    Raises:
        PcopilotError: not a readable GGUF file.
    """
    from gguf import GGUFReader

    path = Path(path)
    if not path.is_file():
        raise PcopilotError(f"no GGUF file at {path}; make one with `pcopilot export gguf`")
    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as error:
        raise PcopilotError(f"{path} is not a readable GGUF file: {error}") from error

    def value(key: str) -> object:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    architecture = str(value("general.architecture"))
    token_ids = {
        key: int(field.contents())
        for key, field in reader.fields.items()
        if key.startswith("tokenizer.ggml.") and key.endswith("_token_id")
    }
    pre_tokenizer = value("tokenizer.ggml.pre")
    return GgufInfo(
        path=path,
        architecture=architecture,
        context_length=int(value(f"{architecture}.context_length") or 0),
        tokens=list(value("tokenizer.ggml.tokens") or []),
        token_ids=token_ids,
        pre_tokenizer=None if pre_tokenizer is None else str(pre_tokenizer),
    )


def check_fim_metadata(info: GgufInfo) -> dict[str, int]:
    """The GGUF's FIM keys, checked against the token ids its own vocabulary gives the family's FIM tokens.

    Raises:
        PcopilotError: a key is missing or holds another token's id.
    """
    family = info.family()
    expected = fim_metadata({token: i for i, token in enumerate(info.tokens)}, family)
    missing = [key for key in expected if key not in info.token_ids]
    wrong = [
        f"{key} = {info.token_ids[key]} (expected {expected[key]}, {info.tokens[expected[key]]!r})"
        for key in expected
        if key in info.token_ids and info.token_ids[key] != expected[key]
    ]
    if missing or wrong:
        problems = ([f"missing: {', '.join(missing)}"] if missing else []) + wrong
        raise PcopilotError(
            f"{info.path} lacks the FIM token ids of model family {family.name!r} in its metadata "
            f"({'; '.join(problems)}); llama.cpp's /infill and editor plugins rely on them. Re-export it with "
            "`pcopilot export gguf`, which writes them"
        )
    return expected
