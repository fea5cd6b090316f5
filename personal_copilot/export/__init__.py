"""Stage 6, `pcopilot export gguf|ollama|editor|vllm|llamacpp-server` and `pcopilot run`: a trained model as one GGUF
file for llama.cpp (llama.cpp's own converter, FIM token ids in the metadata), an Ollama Modelfile that fills in the
middle, settings snippets for llm-vscode / Continue / Tabby, a local completion with llama-cpp-python, and the
commands and compose files that run it on vLLM or llama.cpp's server behind `pcopilot serve --engine`. Importing it
imports no torch, gguf or llama_cpp.
"""

from personal_copilot.export.config import (
    CompletionConfig,
    EditorConfig,
    GgufConfig,
    LlamaCppServerConfig,
    OllamaConfig,
    VllmConfig,
)
from personal_copilot.export.converter import LLAMA_CPP_DIR_ENV, converter_cache_dir, find_converter
from personal_copilot.export.editor import editor_snippet, tabby_config
from personal_copilot.export.engine import run_export_llamacpp_server, run_export_vllm, vllm_command
from personal_copilot.export.gguf_metadata import GgufInfo, check_fim_metadata, fim_keys, fim_metadata, read_gguf
from personal_copilot.export.model_source import resolve_model_source
from personal_copilot.export.ollama import modelfile, ollama_template
from personal_copilot.export.pretokenizer import check_tokenizer_parity, llama_cpp_pre_tokenizer
from personal_copilot.export.report import CompletionReport, EditorReport, EngineExportReport, GgufReport, OllamaReport
from personal_copilot.export.run import run_completion, run_export_editor, run_export_gguf, run_export_ollama

__all__ = [
    "LLAMA_CPP_DIR_ENV",
    "CompletionConfig",
    "CompletionReport",
    "EditorConfig",
    "EditorReport",
    "EngineExportReport",
    "GgufConfig",
    "GgufInfo",
    "GgufReport",
    "LlamaCppServerConfig",
    "OllamaConfig",
    "OllamaReport",
    "VllmConfig",
    "check_fim_metadata",
    "check_tokenizer_parity",
    "converter_cache_dir",
    "editor_snippet",
    "fim_keys",
    "fim_metadata",
    "find_converter",
    "llama_cpp_pre_tokenizer",
    "modelfile",
    "ollama_template",
    "read_gguf",
    "resolve_model_source",
    "run_completion",
    "run_export_editor",
    "run_export_gguf",
    "run_export_llamacpp_server",
    "run_export_ollama",
    "run_export_vllm",
    "tabby_config",
    "vllm_command",
]
