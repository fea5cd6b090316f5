"""Settings of `pcopilot serve`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from personal_copilot.configs import named_values
from personal_copilot.dataset import FamilyName, Layout


@dataclass
class ServeConfig:
    """Serve a code model to editors over the protocols they already speak: text-generation-inference (llm-vscode,
    Continue), OpenAI completions with `suffix` and chat, Ollama and llama.cpp's /infill; several LoRA adapters on one
    base, chosen per request. Prints the llm-vscode and Continue settings for the served model.

    Example: pcopilot serve --model runs/qwen-lora --adapters chat=runs/chat-lora --api_key $KEY
    """

    model: str = "base"
    """Hub id or local directory of a causal LM, a `pcopilot train` run directory (its base model and adapter are
    read from pcopilot_config.yaml; the adapter is what plain requests get), or `base`: the shipped base model."""
    adapters: list[str] = field(default_factory=list)
    """More LoRA adapters of the same base, as NAME=PATH; a request picks one by name (TGI `adapter_id`, the
    `model` field of OpenAI and Ollama requests)."""
    name: str | None = None
    """Name of what requests get by default: the run's adapter, or the model when --model has no adapter (default:
    the run's or model's folder name, `base` for the shipped base, a hub id's last part); keep the family in it (e.g.
    acme-qwen2.5-coder), since some clients pick the FIM template from the name."""
    host: str = "127.0.0.1"
    """Address to listen on; anything other than loopback is reachable from the network (set --api_key)."""
    port: int = 8080
    """Port to listen on (0: any free port)."""
    api_key: str | None = None
    """Key that requests must send as `Authorization: Bearer KEY` (default: $PCOPILOT_API_KEY; none: no check)."""
    family: FamilyName | None = None
    """FIM sentinel family (default: the training run's, or detected from the tokenizer's vocabulary)."""
    fim_layout: Layout | None = None
    """Order of the FIM prompts the server builds (a client's sentinel prompt is re-ordered too): psm (prefix,
    suffix, middle) or spm (default: the layout the base was measured best in, recorded by `pcopilot base build`
    for the embedded base; psm for other models)."""
    fim_stop_at_block_end: bool = True
    """Cut a FIM completion where it leaves the cursor's block while the suffix holds the code after it (the rule
    is in docs/serve.md)."""
    fim_heal: bool = True
    """Token healing: leave the FIM prefix's last token out of the prompt and let the completion write it again, so
    a cursor after indentation or inside a word gives the model the tokens it was trained on (docs/serve.md)."""
    chat_template: Path | None = None
    """Jinja chat template file for models whose tokenizer has none (/v1/chat/completions and /api/chat)."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """auto: bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPU."""
    attn_implementation: Literal["sdpa", "flash_attention_2", "eager"] = "sdpa"
    """Attention kernel; flash_attention_2 needs a CUDA GPU and the flash-attn package."""
    max_new_tokens: int | None = None
    """Most tokens one request may generate; asking for more is an error (default: 512, at most half the model's
    context)."""
    max_input_tokens: int | None = None
    """Most prompt tokens (default: the model's context minus --max_new_tokens)."""
    prompt_overflow: Literal["truncate", "reject"] = "truncate"
    """A longer prompt: truncate (FIM: the start of the prefix and the end of the suffix; plain text: its start) or
    reject it with 422. Chat prompts and prompts holding FIM tokens in an unknown layout are never cut."""
    max_batch_size: int = 8
    """Most requests generated together in one batch."""
    batch_window_ms: float = 5.0
    """How long an idle server waits for more requests to batch with the first one."""
    max_concurrent_requests: int = 64
    """Most generations queued or running; more get 429 (Too Many Requests)."""
    max_body_bytes: int = 2_000_000
    """Largest request body; larger ones get 413."""
    max_rows_per_request: int = 32
    """Most completions one request may ask for (OpenAI: prompts × n); more get 413 before any work is done."""
    engine: str | None = None
    """URL of an OpenAI-compatible inference engine (vLLM, SGLang, llama.cpp's server, another pcopilot serve), e.g.
    http://gpu-box:8000: this server then builds the prompts (FIM from --model's family) and forwards plain
    /v1/completions to it, loading only --model's tokenizer and config (default: generate in this process)."""
    engine_models: list[str] = field(default_factory=list)
    """With --engine: NAME=ENGINE_MODEL, the engine's model (or LoRA module) name for a name served here (default:
    the same name; the bare base is sent as its served name). A NAME not otherwise served is served as an adapter
    the engine holds."""
    engine_api_key: str | None = None
    """With --engine: the key sent to it as `Authorization: Bearer KEY` (default: $PCOPILOT_ENGINE_API_KEY)."""
    engine_timeout: float = 60.0
    """With --engine: seconds to wait for the engine's next bytes (its whole answer when not streamed); longer
    gets 504."""

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("--model is required: a hub id, a model directory or a `pcopilot train` run directory")
        if isinstance(self.adapters, str):
            self.adapters = [self.adapters]
        named_values(self.adapters, "--adapters")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in 0..65535, got {self.port}")
        for flag in ("max_new_tokens", "max_input_tokens"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                raise ValueError(f"--{flag} must be >= 1, got {value}")
        for flag in ("max_batch_size", "max_concurrent_requests", "max_body_bytes", "max_rows_per_request"):
            if getattr(self, flag) < 1:
                raise ValueError(f"--{flag} must be >= 1, got {getattr(self, flag)}")
        if self.batch_window_ms < 0:
            raise ValueError(f"--batch_window_ms must be >= 0, got {self.batch_window_ms}")
        if self.chat_template is not None:
            self.chat_template = Path(self.chat_template)
        if isinstance(self.engine_models, str):
            self.engine_models = [self.engine_models]
        named_values(self.engine_models, "--engine_models", "ENGINE_MODEL")
        if self.engine_models and not self.engine:
            raise ValueError("--engine_models maps names to an engine's models; give the engine with --engine URL")
        if self.engine is not None and not self.engine.startswith(("http://", "https://")):
            raise ValueError(f"--engine takes the engine's http:// or https:// URL, got {self.engine!r}")
        if self.engine_timeout <= 0:
            raise ValueError(f"--engine_timeout must be > 0 seconds, got {self.engine_timeout}")

    def adapter_paths(self) -> dict[str, str]:
        """--adapters as {name: path}."""
        return named_values(self.adapters, "--adapters")

    def engine_model_names(self) -> dict[str, str]:
        """--engine_models as {served name: engine model}."""
        return named_values(self.engine_models, "--engine_models", "ENGINE_MODEL")
