"""FIM token ids in GGUF metadata: the keys llama.cpp reads, the ids per family, and the check on files written with
the gguf package's own GGUFWriter (no FIM keys, wrong ids, no FIM family at all)."""

from __future__ import annotations

from pathlib import Path

import pytest

from personal_copilot.dataset import FAMILIES
from personal_copilot.errors import PcopilotError
from personal_copilot.export import check_fim_metadata, fim_metadata, read_gguf
from tests.export.ggufs import STARCODER_VOCAB, write_gguf


def test_keys_are_the_ones_llama_cpp_reads() -> None:
    vocabulary = {token: i for i, token in enumerate(STARCODER_VOCAB)}

    metadata = fim_metadata(vocabulary, FAMILIES["starcoder"])

    assert metadata == {
        "tokenizer.ggml.fim_pre_token_id": 1,
        "tokenizer.ggml.prefix_token_id": 1,
        "tokenizer.ggml.fim_suf_token_id": 3,
        "tokenizer.ggml.suffix_token_id": 3,
        "tokenizer.ggml.fim_mid_token_id": 2,
        "tokenizer.ggml.middle_token_id": 2,
        "tokenizer.ggml.fim_pad_token_id": 4,
        "tokenizer.ggml.fim_rep_token_id": 5,
        "tokenizer.ggml.fim_sep_token_id": 6,
        "tokenizer.ggml.eot_token_id": 0,
    }


def test_optional_roles_are_skipped_and_eot_is_the_family_end_token() -> None:
    codellama = {"</s>": 2, "▁<PRE>": 32007, "▁<SUF>": 32008, "▁<MID>": 32009, "▁<EOT>": 32010}
    metadata = fim_metadata(codellama, FAMILIES["codellama"])
    assert metadata["tokenizer.ggml.eot_token_id"] == 32010 and "tokenizer.ggml.fim_pad_token_id" not in metadata

    without_file_sep = {t: i for i, t in enumerate(STARCODER_VOCAB) if t not in ("<file_sep>", "<repo_name>")}
    assert "tokenizer.ggml.fim_sep_token_id" not in fim_metadata(without_file_sep, FAMILIES["starcoder"])

    with pytest.raises(PcopilotError, match="no middle token '<fim_middle>'"):
        fim_metadata({t: i for i, t in enumerate(STARCODER_VOCAB) if t != "<fim_middle>"}, FAMILIES["starcoder"])


def test_check_passes_on_a_gguf_with_the_keys(tmp_path: Path) -> None:
    vocabulary = {token: i for i, token in enumerate(STARCODER_VOCAB)}
    path = write_gguf(tmp_path / "ok.gguf", STARCODER_VOCAB, fim_metadata(vocabulary, FAMILIES["starcoder"]))

    info = read_gguf(path)

    assert check_fim_metadata(info)["tokenizer.ggml.fim_sep_token_id"] == 6
    assert (info.architecture, info.context_length, info.family().name) == ("llama", 128, "starcoder")


def test_check_fails_loudly_on_a_gguf_without_fim_keys(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "no-fim.gguf", STARCODER_VOCAB, {"tokenizer.ggml.eos_token_id": 0})

    with pytest.raises(PcopilotError) as error:
        check_fim_metadata(read_gguf(path))

    message = str(error.value)
    assert "lacks the FIM token ids of model family 'starcoder'" in message and "/infill" in message
    for key in ("fim_pre_token_id", "prefix_token_id", "fim_suf", "fim_mid", "fim_pad", "fim_sep", "eot_token_id"):
        assert key in message


def test_check_names_a_key_that_holds_another_tokens_id(tmp_path: Path) -> None:
    vocabulary = {token: i for i, token in enumerate(STARCODER_VOCAB)}
    metadata = fim_metadata(vocabulary, FAMILIES["starcoder"]) | {"tokenizer.ggml.fim_mid_token_id": 3}
    path = write_gguf(tmp_path / "swapped.gguf", STARCODER_VOCAB, metadata)

    with pytest.raises(PcopilotError, match=r"fim_mid_token_id = 3 \(expected 2, '<fim_middle>'\)"):
        check_fim_metadata(read_gguf(path))


def test_a_vocabulary_without_fim_tokens_cannot_fill_in_the_middle(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "plain.gguf", ["<|endoftext|>", "a", "b"], {})

    with pytest.raises(PcopilotError, match="FIM tokens of no known model family"):
        check_fim_metadata(read_gguf(path))


def test_reading_something_else_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(PcopilotError, match="no GGUF file"):
        read_gguf(tmp_path / "missing.gguf")
    (tmp_path / "text.gguf").write_text("not a gguf")
    with pytest.raises(PcopilotError, match="not a readable GGUF"):
        read_gguf(tmp_path / "text.gguf")
