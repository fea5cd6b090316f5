"""The converter's child process: llama.cpp's `convert_hf_to_gguf.py`, run as is, with one model class registered.

    python -m personal_copilot.export.converter_child LLAMA_CPP_DIR SPEC_JSON MODEL_DIR --outfile F --outtype T

Why a registered subclass. The converter names a BPE tokenizer's pre-tokenizer (`tokenizer.ggml.pre`) by looking up
the sha256 of the token ids the tokenizer gives a fixed probe text (`get_vocab_base_pre`). The ids depend on the
learned vocabulary, so a tokenizer trained on your own code never matches, even when its pre-tokenizer is exactly
GPT-2's; the converter then stops with "BPE pre-tokenizer was not recognized". Upstream's way to add a tokenizer,
`convert_hf_to_gguf_update.py`, downloads it from the Hub and regenerates that function's source in
`conversion/base.py` ("not meant to be run by end users"). What the converter does offer is its model-class registry:
every architecture is a `ModelBase` subclass registered with `ModelBase.register(arch)`, and `get_model_class(arch)`
returns the registered class. So we register, for the model's architecture, a subclass of the converter's own class
that asks the hash table first and, only when it has no entry, answers with the pre-tokenizer the parent process
matched to the tokenizer.json (the export then checks that llama.cpp tokenizes exactly like the HF tokenizer). The
same subclass adds the FIM token ids to the header after the converter's own vocabulary. Nothing in the converter is
edited or patched; the rest of `main()` (arguments, tensor mapping, quantization, writing) runs unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = "convert_hf_to_gguf.py"


def load_converter(llama_cpp_dir: Path) -> ModuleType:
    """Imports `convert_hf_to_gguf.py` as a module (its `main()` not run), with its `conversion/` and `gguf-py/`."""
    sys.path[:0] = [str(llama_cpp_dir), str(llama_cpp_dir / "gguf-py")]
    spec = importlib.util.spec_from_file_location("convert_hf_to_gguf", llama_cpp_dir / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_model_class(
    converter: ModuleType, architecture: str, pre_tokenizer: str | None, metadata: dict[str, int]
) -> type:
    """Registers, for `architecture`, the converter's class extended with our pre-tokenizer fallback and header keys.

    Raises:
        NotImplementedError: the converter does not support the architecture.
    """
    base: Any = converter.get_model_class(architecture)

    @converter.ModelBase.register(architecture)
    class PersonalCopilotModel(base):
        model_arch = base.model_arch  # the converter requires every class to name its GGUF architecture

        def get_vocab_base_pre(self, tokenizer: Any) -> str:
            try:
                return super().get_vocab_base_pre(tokenizer)
            except NotImplementedError:
                if pre_tokenizer is None:
                    raise
                converter.logger.warning(
                    "personal-copilot: the tokenizer's hash is not in the converter's table; its tokenizer.json "
                    "pre_tokenizer matches llama.cpp's %r, which is written as tokenizer.ggml.pre",
                    pre_tokenizer,
                )
                return pre_tokenizer

        def set_vocab(self) -> None:
            super().set_vocab()
            for key, value in metadata.items():
                self.gguf_writer.add_uint32(key, value)

    return PersonalCopilotModel


def main(argv: list[str]) -> int:
    llama_cpp_dir, spec_json, *converter_args = argv
    spec = json.loads(spec_json)
    converter = load_converter(Path(llama_cpp_dir))
    try:
        register_model_class(converter, spec["architecture"], spec["pre_tokenizer"], spec["metadata"])
    except NotImplementedError:
        print(f"llama.cpp's converter does not support the architecture {spec['architecture']!r}", file=sys.stderr)
        return 2
    sys.argv = [str(Path(llama_cpp_dir) / SCRIPT), *converter_args]
    converter.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
