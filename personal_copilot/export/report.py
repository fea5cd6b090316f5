"""What `pcopilot export gguf|ollama|editor` and `pcopilot run` report."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from personal_copilot.console import print_command, print_summary, stderr


def _size(size_bytes: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = min(int(math.log(max(size_bytes, 1), 1024)), len(units) - 1)
    return f"{size_bytes / 1024**power:,.1f} {units[power]}"


@dataclass
class GgufReport:
    output: str
    size_bytes: int
    outtype: str
    base_model: str
    adapter: str | None
    family: str
    pre_tokenizer: str | None
    """`tokenizer.ggml.pre` in the file."""
    fim_token_ids: dict[str, int]
    """The FIM keys of the header, checked against the vocabulary."""
    tokenizer_texts_checked: int
    """Probe texts llama.cpp tokenized exactly like the HF tokenizer."""
    converter: str
    """The llama.cpp directory whose converter ran."""
    merge_seconds: float
    convert_seconds: float
    seconds: float
    exit_code: int = 0

    def print(self) -> None:
        fim = ", ".join(f"{key.removeprefix('tokenizer.ggml.')}={i}" for key, i in self.fim_token_ids.items())
        print_summary(
            "pcopilot export gguf",
            [
                ("GGUF", self.output),
                ("size", _size(self.size_bytes)),
                ("type", self.outtype),
                ("base model", self.base_model),
                ("adapter merged", self.adapter or "-"),
                ("FIM family", self.family),
                ("pre-tokenizer", self.pre_tokenizer or "-"),
                ("FIM token ids", fim),
                ("tokenizer check", f"{self.tokenizer_texts_checked} texts tokenized as by transformers"),
                ("merge / convert seconds", f"{self.merge_seconds:.1f} / {self.convert_seconds:.1f}"),
                ("seconds", self.seconds),
            ],
        )
        print_command("try it", f"pcopilot run --gguf {self.output} --prompt 'def add(a, b):' --suffix '    return c'")


@dataclass
class OllamaReport:
    modelfile: str
    name: str
    gguf: str
    family: str
    context_window: int
    stop: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def create_command(self) -> str:
        return f"ollama create {self.name} -f {self.modelfile}"

    def print(self) -> None:
        print_summary(
            "pcopilot export ollama",
            [
                ("Modelfile", self.modelfile),
                ("GGUF", self.gguf),
                ("FIM family", self.family),
                ("num_ctx", self.context_window),
                ("stop", " ".join(self.stop)),
            ],
        )
        print_command("next", self.create_command)


@dataclass
class EditorReport:
    client: str
    family: str
    context_window: int
    snippet: str
    output: str | None = None
    exit_code: int = 0

    def print(self) -> None:
        if self.output is None:
            sys.stdout.write(self.snippet)  # the snippet alone on stdout, ready to redirect
            return
        print_summary(
            "pcopilot export editor",
            [("client", self.client), ("written to", self.output), ("FIM family", self.family)],
        )


@dataclass
class CompletionReport:
    gguf: str
    fill_in_the_middle: bool
    completion: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    tokens_per_second: float
    exit_code: int = 0

    def print(self) -> None:
        sys.stdout.write(self.completion + "\n")
        stderr.print(
            f"[dim]{'fill-in-the-middle' if self.fill_in_the_middle else 'completion'}: {self.prompt_tokens} prompt "
            f"tokens, {self.completion_tokens} generated ({self.finish_reason}), {self.tokens_per_second:,.1f} tok/s"
        )


@dataclass
class EngineExportReport:
    """What `pcopilot export vllm|llamacpp-server` wrote: the engine's command and the front's."""

    engine: str
    """vllm or llama.cpp."""
    output: str
    engine_command: list[str]
    front_command: list[str]
    files: list[str]
    tensor_parallel_size: int | None = None
    lora_modules: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0

    def print(self) -> None:
        rows = [("engine", " ".join(self.engine_command)), ("front", " ".join(self.front_command))]
        if self.tensor_parallel_size is not None:
            rows.append(("tensor parallel", self.tensor_parallel_size))
        rows += [("LoRA modules", ", ".join(self.lora_modules) or "-"), ("wrote", ", ".join(self.files))]
        rows += [("note", note) for note in self.notes]
        rows.append(("next", f"cd {self.output} && PCOPILOT_API_KEY=... docker compose up"))
        print_summary(f"pcopilot export {self.engine}", rows)
