"""`pcopilot export gguf|ollama|editor` and `pcopilot run`: from a training run to a local, offline completion model.

    pcopilot export gguf --model runs/tiny-lora --output tiny.gguf
    pcopilot export ollama --gguf tiny.gguf --output ollama/ && ollama create tiny -f ollama/Modelfile
    pcopilot export editor --client continue --url http://localhost:11434 --model tiny --gguf tiny.gguf
    pcopilot run --gguf tiny.gguf --prompt 'def add(a, b):' --suffix '    return c'

Python: `run_export_gguf(GgufConfig(model="runs/tiny-lora", output=Path("tiny.gguf")))`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from personal_copilot.configs import write_atomic, write_report, write_run_config
from personal_copilot.console import progress_bar
from personal_copilot.dataset import ModelFamily, get_family
from personal_copilot.errors import PcopilotError
from personal_copilot.export.config import CompletionConfig, EditorConfig, GgufConfig, OllamaConfig
from personal_copilot.export.converter import ConversionSpec, check_convertible, find_converter, run_converter
from personal_copilot.export.editor import editor_snippet
from personal_copilot.export.gguf_metadata import GgufInfo, check_fim_metadata, fim_metadata, read_gguf
from personal_copilot.export.local import (
    default_context_window,
    fim_prompt_ids,
    generate,
    open_model,
    plain_prompt_ids,
)
from personal_copilot.export.model_source import materialize, resolve_model_source
from personal_copilot.export.ollama import gguf_fim_layout, modelfile, ollama_name
from personal_copilot.export.pretokenizer import PROBE_TEXTS, check_tokenizer_parity, llama_cpp_pre_tokenizer
from personal_copilot.export.report import CompletionReport, EditorReport, GgufReport, OllamaReport
from personal_copilot.modeling import load_tokenizer
from personal_copilot.serve import CompletionEndpoint

_CHECK_CONTEXT = 512
"""Context of the llama.cpp instance that loads a converted GGUF to check it."""


def _require_gguf_extra(*modules: str) -> None:
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise PcopilotError(
            f"this needs the gguf extra ({', '.join(missing)} missing): pip install 'personal-copilot[gguf]' "
            "(llama-cpp-python builds from source in a few minutes)"
        )


def _conversion_spec(model_dir: Path, metadata: dict[str, int]) -> ConversionSpec:
    architecture = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["architectures"][0]
    tokenizer_json = model_dir / "tokenizer.json"
    pre_tokenizer = None
    if tokenizer_json.is_file():
        pre_tokenizer = llama_cpp_pre_tokenizer(json.loads(tokenizer_json.read_text(encoding="utf-8")))
    return ConversionSpec(architecture=architecture, pre_tokenizer=pre_tokenizer, metadata=metadata)


def _check_gguf(path: Path, tokenizer: Any, family: ModelFamily) -> tuple[GgufInfo, dict[str, int], int]:
    """The header read back, its checked FIM keys, and the number of texts llama.cpp (which must load the file)
    tokenized exactly like the HF tokenizer."""
    info = read_gguf(path)
    fim_token_ids = check_fim_metadata(info)
    llm = open_model(path, min(info.context_length or _CHECK_CONTEXT, _CHECK_CONTEXT))
    try:
        probes = [*PROBE_TEXTS, family.fim_prompt("def f(x):\n    ", "\n    return y\n")]
        return info, fim_token_ids, check_tokenizer_parity(llm, tokenizer, probes)
    finally:
        llm.close()


def run_export_gguf(config: GgufConfig) -> GgufReport:
    """Merges the adapter (if any), converts with llama.cpp's converter, checks the FIM metadata and the tokenizer,
    then moves the GGUF to `config.output` (it never appears there unchecked)."""
    from transformers import AutoConfig

    if config.output.exists() and not config.overwrite:
        raise PcopilotError(f"--output {config.output} exists; choose another file or pass --overwrite to replace it")
    _require_gguf_extra("gguf", "llama_cpp")
    start = time.perf_counter()
    source = resolve_model_source(config.model, config.adapter)
    tokenizer = load_tokenizer(source.tokenizer)
    family = get_family(config.family or source.family or tokenizer)
    metadata = fim_metadata(tokenizer.get_vocab(), family)
    check_convertible(AutoConfig.from_pretrained(source.base).to_dict())
    llama_cpp_dir = find_converter(config.llama_cpp_dir)
    output = config.output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    log = output.with_name(output.name + ".log")  # the converter's output, kept when it fails
    log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".pcopilot-export-") as work:
        merging = time.perf_counter()
        with progress_bar("merging the adapter" if source.adapter else "reading the model", total=None):
            model_dir = materialize(source, tokenizer, Path(work) / "model")
        converting = time.perf_counter()
        converted, spec = Path(work) / output.name, _conversion_spec(model_dir, metadata)
        with progress_bar(f"converting to GGUF ({config.outtype})", total=None):
            run_converter(llama_cpp_dir, spec, model_dir, converted, config.outtype, log)
        converted_at = time.perf_counter()
        info, fim_token_ids, texts_checked = _check_gguf(converted, tokenizer, family)
        os.replace(converted, output)
    report = GgufReport(
        output=str(output),
        size_bytes=output.stat().st_size,
        outtype=config.outtype,
        base_model=source.base,
        adapter=str(source.adapter) if source.adapter else None,
        family=family.name,
        pre_tokenizer=info.pre_tokenizer,
        fim_token_ids=fim_token_ids,
        tokenizer_texts_checked=texts_checked,
        converter=str(llama_cpp_dir),
        merge_seconds=round(converting - merging, 2),
        convert_seconds=round(converted_at - converting, 2),
        seconds=round(time.perf_counter() - start, 2),
    )
    write_run_config(
        output.parent,
        "export gguf",
        config,
        filename=f"{output.stem}.pcopilot_config.yaml",
        base_model=source.base,
        family=family.name,
        details={"adapter": report.adapter},
    )
    write_report(output.parent, report, filename=f"{output.stem}.report.json")
    return report


def run_export_ollama(config: OllamaConfig) -> OllamaReport:
    """Writes OUTPUT/Modelfile for the GGUF and returns the report (with the `ollama create` command)."""
    _require_gguf_extra("gguf")
    info = read_gguf(config.gguf)
    family = info.family()
    name = ollama_name(config.name or config.gguf.stem)
    context_window = default_context_window(info, config.context_window)
    text = modelfile(
        config.gguf,
        config.output,
        family,
        context_window=context_window,
        temperature=config.temperature,
        name=name,
        layout=gguf_fim_layout(config.gguf, config.fim_layout),
    )
    path = config.output / "Modelfile"
    write_atomic(path, text)
    report = OllamaReport(
        modelfile=str(path),
        name=name,
        gguf=str(config.gguf.resolve()),
        family=family.name,
        context_window=context_window,
        stop=list(family.stop),
    )
    write_run_config(config.output, "export ollama", config, family=family.name)
    write_report(config.output, report)
    return report


def run_export_editor(config: EditorConfig) -> EditorReport:
    """The client's settings snippet, written to `config.output` or carried by the report for printing."""
    info = None
    if config.gguf is not None:
        _require_gguf_extra("gguf")
        info = read_gguf(config.gguf)
    if config.family is None and info is None:
        raise PcopilotError("name the model family with --family (starcoder, qwen, ...) or point --gguf at the model")
    family = get_family(config.family) if config.family else info.family()
    context_window = default_context_window(info, config.context_window)
    if context_window <= config.max_tokens:
        raise PcopilotError(
            f"the context window ({context_window} tokens) leaves no room for a prompt of --max_tokens "
            f"{config.max_tokens}; raise --context_window"
        )
    endpoint = CompletionEndpoint(
        family=family,
        url=config.url,
        model=config.model,
        server=config.server,
        context_window=context_window,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
    )
    snippet = editor_snippet(config.client, endpoint)
    if config.output is not None:
        write_atomic(config.output, snippet)
    return EditorReport(
        client=config.client,
        family=family.name,
        context_window=context_window,
        snippet=snippet,
        output=str(config.output) if config.output else None,
    )


def run_completion(config: CompletionConfig) -> CompletionReport:
    """Completes `config.prompt` (fill-in-the-middle with `config.suffix`) with llama-cpp-python."""
    _require_gguf_extra("gguf", "llama_cpp")
    info = read_gguf(config.gguf)
    fill_in_the_middle = config.suffix is not None
    if fill_in_the_middle:
        check_fim_metadata(info)
    context_window = default_context_window(info, config.context_window)
    llm = open_model(config.gguf, context_window, threads=config.threads, seed=config.seed)
    try:
        if fill_in_the_middle:
            prompt_ids = fim_prompt_ids(llm, info, config.prompt, config.suffix)
        else:
            prompt_ids = plain_prompt_ids(llm, config.prompt)
        generation = generate(llm, prompt_ids, max_tokens=config.max_tokens, temperature=config.temperature)
    finally:
        llm.close()
    return CompletionReport(
        gguf=str(config.gguf),
        fill_in_the_middle=fill_in_the_middle,
        completion=generation.text,
        prompt_tokens=len(prompt_ids),
        completion_tokens=len(generation.ids),
        finish_reason=generation.finish_reason,
        tokens_per_second=round(len(generation.ids) / max(generation.seconds, 1e-9), 1),
    )
