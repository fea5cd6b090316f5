"""Stage 6, `pcopilot serve`: one completion server for every editor, over text-generation-inference, OpenAI (with
`suffix`), Ollama and llama.cpp protocols, with several LoRA adapters on one base chosen per request and requests
batched as they arrive. Importing it imports neither torch nor FastAPI: `serve.engine` (transformers) and `serve.app`
(FastAPI) are imported where they are used.
"""

from personal_copilot.serve.config import ServeConfig
from personal_copilot.serve.editors import (
    CompletionEndpoint,
    ServerApi,
    continue_config,
    editor_instructions,
    fim_parts,
    llm_vscode_settings,
)
from personal_copilot.serve.generation import (
    Engine,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    PreparedRequest,
    RequestError,
    SamplingParams,
    TokenEvent,
)
from personal_copilot.serve.model_source import served_names
from personal_copilot.serve.report import ServeReport
from personal_copilot.serve.run import run_serve

__all__ = [
    "CompletionEndpoint",
    "Engine",
    "GenerationRequest",
    "GenerationResult",
    "ModelInfo",
    "PreparedRequest",
    "RequestError",
    "SamplingParams",
    "ServeConfig",
    "ServeReport",
    "ServerApi",
    "TokenEvent",
    "continue_config",
    "editor_instructions",
    "fim_parts",
    "llm_vscode_settings",
    "run_serve",
    "served_names",
]
