"""Settings of `pcopilot export gguf|ollama|editor|vllm|llamacpp-server` and `pcopilot run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from personal_copilot.configs import named_values
from personal_copilot.dataset import FamilyName
from personal_copilot.serve import ServerApi

Outtype = Literal["f16", "bf16", "q8_0", "f32"]
EditorClient = Literal["llm-vscode", "continue", "tabby"]


@dataclass
class GgufConfig:
    """Merge a run's LoRA adapter (if any) into its base model and convert the result to one GGUF file with
    llama.cpp's own converter; the model family's FIM token ids are written into the GGUF metadata and checked.

    Example: pcopilot export gguf --model runs/tiny-lora --output tiny.gguf --outtype q8_0
    """

    model: str
    """Hub id, local model directory, or `pcopilot train` run directory (its base model and adapter are read from
    its pcopilot_config.yaml)."""
    output: Path
    """The GGUF file to write (FILE.gguf; FILE.pcopilot_config.yaml and FILE.report.json go beside it)."""
    adapter: Path | None = None
    """LoRA adapter directory to merge into --model (a run directory brings its own)."""
    outtype: Outtype = "f16"
    """Weight type: f16 / bf16 (16-bit), q8_0 (8-bit, about half the size), f32 (exact, for checks)."""
    family: FamilyName | None = None
    """Model family whose FIM tokens go into the metadata (default: the run's family, else detected from the
    tokenizer)."""
    llama_cpp_dir: Path | None = None
    """llama.cpp checkout whose convert_hf_to_gguf.py to use (default: $LLAMA_CPP_DIR, else the converter in the
    llama-cpp-python sdist of the installed version, fetched once with pip into the user cache)."""
    overwrite: bool = False
    """Replace --output when it exists (without it an existing GGUF is an error, before any work)."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if self.output.suffix != ".gguf":
            raise ValueError(f"--output must name a .gguf file, got {str(self.output)!r}")


@dataclass
class OllamaConfig:
    """Write an Ollama Modelfile for a GGUF: its template fills in the middle when a request has a `suffix`
    (Ollama's `.Suffix`, which Continue and llm-ls use), with the family's stop tokens and the context window.

    Example: pcopilot export ollama --gguf tiny.gguf --output ollama/ && ollama create tiny -f ollama/Modelfile
    """

    gguf: Path
    """The GGUF file (from `pcopilot export gguf`)."""
    output: Path
    """Directory for the Modelfile (with pcopilot_config.yaml and report.json)."""
    name: str | None = None
    """Model name for `ollama create` (default: the GGUF file name). Keep the family in it (acme-starcoder2):
    clients that pick a FIM template by model name then pick the right one."""
    context_window: int | None = None
    """num_ctx in tokens (default: the GGUF's context length, at most 4096)."""
    temperature: float = 0.2
    """Default sampling temperature of the model."""
    fim_layout: Literal["psm", "spm"] | None = None
    """Layout of the FIM prompt in the template (default: the one the GGUF's base was measured best in, as the
    embedded base's record says; else psm)."""

    def __post_init__(self) -> None:
        if self.context_window is not None and self.context_window < 16:
            raise ValueError(f"--context_window must be at least 16 tokens, got {self.context_window}")
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")


@dataclass
class EditorConfig:
    """Print (or write) the settings an editor client needs to complete code with your model: its FIM tokens,
    stop tokens and context window, for llm-vscode (settings.json), Continue (config.yaml) or Tabby (config.toml).

    Example: pcopilot export editor --client continue --url http://localhost:11434 --model tiny --gguf tiny.gguf
    """

    client: EditorClient
    """The editor client: llm-vscode (VS Code settings.json), continue (config.yaml), tabby (~/.tabby/config.toml)."""
    url: str
    """Base URL of the completion server (Ollama, llama.cpp's llama-server, or `pcopilot serve`)."""
    model: str
    """Model name the server knows (the `ollama create` name, or the served model id)."""
    server: ServerApi = "ollama"
    """API the server at --url speaks: ollama (/api/generate), openai (/v1/completions), tgi (/generate),
    llama.cpp (llama-server's /completion)."""
    gguf: Path | None = None
    """GGUF file to read the model family and context window from."""
    family: FamilyName | None = None
    """Model family (FIM and stop tokens) when there is no --gguf."""
    context_window: int | None = None
    """Prompt plus completion budget in tokens (default: the GGUF's context length, at most 4096; else 2048)."""
    max_tokens: int = 64
    """Most tokens in one completion."""
    temperature: float = 0.2
    """Sampling temperature of completions."""
    output: Path | None = None
    """Write the snippet to this file (default: print it)."""

    def __post_init__(self) -> None:
        if self.client == "tabby" and self.server == "tgi":
            raise ValueError("--server tgi: Tabby has no TGI connector; use --server openai, ollama or llama.cpp")
        if self.max_tokens < 1:
            raise ValueError(f"--max_tokens must be >= 1, got {self.max_tokens}")
        if self.context_window is not None and self.context_window <= self.max_tokens:
            raise ValueError(
                f"--context_window ({self.context_window}) must be larger than --max_tokens ({self.max_tokens})"
            )
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")


@dataclass
class CompletionConfig:
    """Complete code locally from a GGUF with llama-cpp-python: a plain continuation of --prompt, or, with
    --suffix, a fill-in-the-middle completion built from the GGUF's FIM token ids.

    Example: pcopilot run --gguf tiny.gguf --prompt 'def add(a, b):' --suffix '    return total'
    """

    gguf: Path
    """The GGUF file (from `pcopilot export gguf`)."""
    prompt: str
    """Code before the cursor. Without --suffix it is taken as is, so FIM sentinel text in it acts as sentinels."""
    suffix: str | None = None
    """Code after the cursor: makes it a fill-in-the-middle request."""
    max_tokens: int = 64
    """Most tokens to generate."""
    temperature: float = 0.0
    """Sampling temperature; 0 is greedy."""
    seed: int = 0
    """Sampling seed."""
    context_window: int | None = None
    """Context size in tokens (default: the GGUF's context length, at most 4096)."""
    threads: int | None = None
    """CPU threads (default: llama.cpp's choice)."""

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"--max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")


@dataclass
class VllmConfig:
    """Write what runs a tuned model on vLLM behind `pcopilot serve --engine`: the exact `vllm serve` command (the
    base, --enable-lora with the run's and --adapters' LoRA modules, --max-lora-rank from their configs,
    --tensor-parallel-size for --gpu), a docker-compose.yml with vLLM and the pcopilot front, and a README.

    Example: pcopilot export vllm --model runs/qwen-lora --adapters chat=runs/chat-lora --output deploy/vllm
    """

    model: str
    """Hub id, local model directory, or `pcopilot train` run directory (its base is what vLLM loads, its adapter a
    LoRA module named after the run; a full fine-tune is loaded as the model)."""
    output: Path
    """Directory for vllm_serve.sh, docker-compose.yml, Dockerfile (the front) and README.md."""
    adapters: list[str] = field(default_factory=list)
    """More LoRA adapters of the same base, as NAME=PATH (served under NAME, as `pcopilot serve --adapters`)."""
    gpu: str = "A100-80GB"
    """GPU type the tensor-parallel size is sized for (one of `pcopilot estimate`'s GPUs)."""
    tensor_parallel_size: int | None = None
    """GPUs vLLM splits the model over (default: the fewest of --gpu that hold the bf16 weights in half of vLLM's
    memory share, leaving the rest for the KV cache)."""
    max_model_len: int | None = None
    """vLLM's --max-model-len (default: the model's context length)."""
    image: str = "vllm/vllm-openai:latest"
    """vLLM's container image in docker-compose.yml."""

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if isinstance(self.adapters, str):
            self.adapters = [self.adapters]
        named_values(self.adapters, "--adapters")
        if self.tensor_parallel_size is not None and self.tensor_parallel_size < 1:
            raise ValueError(f"--tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")

    def adapter_paths(self) -> dict[str, Path]:
        return {name: Path(path) for name, path in named_values(self.adapters, "--adapters").items()}


@dataclass
class LlamaCppServerConfig:
    """Write what runs a GGUF on llama.cpp's server (a CPU box, or a GPU build) behind `pcopilot serve --engine`: the
    exact `llama-server` command, a docker-compose.yml with it and the pcopilot front, and a README.

    Example: pcopilot export llamacpp-server --gguf tiny.gguf --model runs/tiny-lora --output deploy/llamacpp
    """

    gguf: Path
    """The GGUF file (from `pcopilot export gguf`)."""
    model: str
    """The run (or model) the GGUF was made from: the front loads its tokenizer and config to build prompts."""
    output: Path
    """Directory for llama_server.sh, docker-compose.yml, Dockerfile (the front) and README.md."""
    context_window: int | None = None
    """Tokens per request slot (default: the GGUF's context length, at most 4096)."""
    parallel: int = 8
    """Requests llama-server generates at once (its --parallel slots)."""
    image: str = "ghcr.io/ggml-org/llama.cpp:server"
    """llama.cpp's server container image in docker-compose.yml."""
    fim_layout: Literal["psm", "spm"] | None = None
    """Layout of llama-server's `/infill` prompts (spm adds `--spm-infill`; default: the one the GGUF's base was
    measured best in, else psm)."""

    def __post_init__(self) -> None:
        self.gguf, self.output = Path(self.gguf), Path(self.output)
        if self.parallel < 1:
            raise ValueError(f"--parallel must be >= 1, got {self.parallel}")
