"""The Ollama Modelfile of a GGUF: FROM the file, a TEMPLATE that fills in the middle when a request has a suffix, the
family's stop tokens, num_ctx and temperature.

Ollama renders `/api/generate`'s `suffix` through the model's template as `.Suffix`; a template without `.Suffix`
makes Ollama reject FIM requests, and Continue only sends them when the template contains `.Suffix`. Without a
suffix the prompt passes through unchanged, so clients that build the FIM prompt themselves (llm-ls) work too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from personal_copilot.configs import CONFIG_FILE, read_run_record
from personal_copilot.dataset import Layout, ModelFamily
from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import fim_layout

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*(:[a-z0-9._-]+)?$")


def ollama_template(family: ModelFamily, layout: Layout = "psm") -> str:
    """The Go template: the family's FIM prompt in `layout` when `.Suffix` is set, else the prompt as is."""
    fim = family.fim_prompt("{{ .Prompt }}", "{{ .Suffix }}", layout)
    return "{{- if .Suffix }}" + fim + "{{- else }}{{ .Prompt }}{{- end }}"


def ollama_name(name: str) -> str:
    """A model name Ollama accepts (lowercase letters, digits, `._-`, an optional `:tag`) made from `name`."""
    cleaned = re.sub(r"[^a-z0-9._:-]+", "-", name.lower()).strip("-._")
    if not _NAME.match(cleaned):
        raise PcopilotError(f"cannot make an Ollama model name of {name!r}; pass --name like acme-starcoder2")
    return cleaned


def _quoted(value: str) -> str:
    if '"' in value or "\n" in value:
        raise PcopilotError(f"{value!r} cannot be written as a Modelfile parameter (it holds a quote or newline)")
    return f'"{value}"'


def modelfile(
    gguf: Path,
    output_dir: Path,
    family: ModelFamily,
    *,
    context_window: int,
    temperature: float,
    name: str,
    layout: Layout = "psm",
) -> str:
    """The Modelfile text; FROM is relative when the GGUF lies under `output_dir`, else absolute."""
    gguf, output_dir = gguf.resolve(), output_dir.resolve()
    source = f"./{Path(os.path.relpath(gguf, output_dir)).as_posix()}" if gguf.is_relative_to(output_dir) else gguf
    lines = [
        f"# Ollama Modelfile of {gguf.name} (FIM family {family.name}), written by `pcopilot export ollama`.",
        f"# ollama create {name} -f {output_dir / 'Modelfile'}",
        f"FROM {source}",
        f'TEMPLATE """{ollama_template(family, layout)}"""',
        *(f"PARAMETER stop {_quoted(stop)}" for stop in family.stop),
        f"PARAMETER num_ctx {context_window}",
        f"PARAMETER temperature {temperature}",
    ]
    return "\n".join(lines) + "\n"


def gguf_fim_layout(gguf: Path, chosen: Layout | None) -> Layout:
    """The FIM layout to prompt a GGUF in: `chosen`, else the one its base was measured best in (the base named in
    the record `pcopilot export gguf` wrote beside it), else psm."""
    record = read_run_record(gguf.parent, f"{gguf.stem}.{CONFIG_FILE}")
    return fim_layout(record.base_model, chosen) if record and record.base_model else chosen or "psm"
