"""Small GGUF files written with the gguf package's GGUFWriter, for tests that only read headers."""

from __future__ import annotations

from pathlib import Path

STARCODER_VOCAB = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<repo_name>"]
STARCODER_VOCAB += ["<file_sep>", "a", "b", "def"]


def write_gguf(path: Path, tokens: list[str], metadata: dict[str, int], context_length: int = 128) -> Path:
    """A vocabulary-only GGUF made with gguf.GGUFWriter (what llama.cpp's converter writes the header with)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(context_length)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    for key, value in metadata.items():
        writer.add_uint32(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
