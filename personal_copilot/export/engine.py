"""What a team needs to run a tuned model on an inference engine behind `pcopilot serve --engine`: the engine's
exact command (vLLM's `vllm serve` with the run's LoRA adapters, or llama.cpp's `llama-server` with the GGUF), a
docker-compose file with the engine and the pcopilot front, and a README page. Pure text: nothing here runs.

vLLM: the base model, `--served-model-name` the base's served name (the name the front sends for the bare base),
`--enable-lora --lora-modules NAME=PATH ...` (the run's own adapter under the run's name, then --adapters),
`--max-lora-rank` the largest adapter rank rounded up to a rank vLLM accepts, `--max-loras` their count, and
`--tensor-parallel-size` the fewest GPUs (a power of two dividing the attention heads) whose memory holds the bf16
weights in at most half of vLLM's share (the other half is the KV cache).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personal_copilot.configs import write_atomic, write_report, write_run_config
from personal_copilot.errors import PcopilotError
from personal_copilot.export.config import LlamaCppServerConfig, VllmConfig
from personal_copilot.export.ollama import gguf_fim_layout
from personal_copilot.export.report import EngineExportReport

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The `--max-lora-rank` values vLLM accepts."""
VLLM_MEMORY_SHARE = 0.9
"""vLLM's default --gpu-memory-utilization."""
WEIGHTS_SHARE = 0.5
"""Most of vLLM's share of a GPU the weights may take (the rest holds the KV cache of concurrent requests)."""
TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)
ENGINE_PORT, FRONT_PORT = 8000, 8080
CONTAINER_MODEL, CONTAINER_RUN, CONTAINER_ADAPTERS = "/models/base", "/models/run", "/models/adapters"


@dataclass(frozen=True)
class LoraModule:
    """An adapter vLLM serves: its name (the one requests use), its directory and rank."""

    name: str
    path: Path
    rank: int


def read_lora_module(name: str, path: Path) -> LoraModule:
    """The adapter in `path`, checked to be one vLLM serves (plain LoRA).

    Raises:
        PcopilotError: no adapter_config.json, or a DoRA / non-LoRA adapter (with the merge command instead).
    """
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise PcopilotError(f"--adapters {name}={path}: no adapter_config.json there; give a LoRA adapter directory")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        kind = f"{config.get('peft_type')}{' with DoRA' if config.get('use_dora') else ''}"
        raise PcopilotError(
            f"adapter {name!r} ({path}) is {kind}, which vLLM does not serve as a LoRA module: merge it with "
            f"`pcopilot adapters merge --adapter {path} --output MERGED` and export MERGED instead"
        )
    return LoraModule(name, path, int(config.get("r", 8)))


def max_lora_rank(modules: list[LoraModule]) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds every adapter."""
    largest = max(module.rank for module in modules)
    fitting = [rank for rank in VLLM_LORA_RANKS if rank >= largest]
    if not fitting:
        raise PcopilotError(f"an adapter has rank {largest}; vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}")
    return fitting[0]


def tensor_parallel_size(params: int, gpu_memory_gb: float, attention_heads: int | None) -> int:
    """The fewest GPUs whose memory holds the bf16 weights in at most half of vLLM's share.

    Raises:
        PcopilotError: not even 8 GPUs hold them (with what to do).
    """
    weights_gb = params * 2 / 1e9
    for size in TENSOR_PARALLEL_SIZES:
        if attention_heads and attention_heads % size:
            continue
        if weights_gb / size <= gpu_memory_gb * VLLM_MEMORY_SHARE * WEIGHTS_SHARE:
            return size
    raise PcopilotError(
        f"the bf16 weights ({weights_gb:.1f} GB) do not fit 8 GPUs of {gpu_memory_gb:g} GB with room for the KV "
        "cache; choose a larger --gpu, or set --tensor_parallel_size (and vLLM's --pipeline-parallel-size) yourself"
    )


def vllm_command(
    model: str, served_name: str, modules: list[LoraModule], tensor_parallel: int, max_model_len: int | None
) -> list[str]:
    """`vllm serve MODEL ...` as argv (local paths as they are: compose mounts them at the same place)."""
    command = ["vllm", "serve", model, "--served-model-name", served_name, "--host", "0.0.0.0"]
    command += ["--port", str(ENGINE_PORT), "--tensor-parallel-size", str(tensor_parallel)]
    if max_model_len:
        command += ["--max-model-len", str(max_model_len)]
    if modules:
        command += ["--enable-lora", "--max-loras", str(len(modules)), "--max-lora-rank", str(max_lora_rank(modules))]
        command += ["--lora-modules", *(f"{m.name}={m.path}" for m in modules)]
    return command


def llama_server_command(gguf: str, context: int, slots: int, layout: str = "psm") -> list[str]:
    """llama.cpp's `llama-server` for the GGUF: `slots` requests at once, sharing a context of `context` tokens
    each; `/infill` prompts in SPM for a model measured best in it."""
    command = ["llama-server", "-m", gguf, "--host", "0.0.0.0", "--port", str(ENGINE_PORT)]
    return [*command, "-c", str(context * slots), "--parallel", str(slots), *(["--spm-infill"] * (layout == "spm"))]


def front_command(model: str, engine_url: str, adapters: list[str]) -> list[str]:
    """`pcopilot serve --engine URL` for the run: the front loads its tokenizer and config, never its weights."""
    command = ["pcopilot", "serve", "--model", model, "--engine", engine_url, "--host", "0.0.0.0"]
    command += ["--port", str(FRONT_PORT)]
    if adapters:
        command += ["--engine_models", *(f"{name}={name}" for name in adapters)]
    return command


def shell_command(argv: list[str]) -> str:
    """argv as one shell command, an option (with its values) per line."""
    lines: list[list[str]] = [[]]
    for arg in argv:
        if arg.startswith("-") and lines[-1]:
            lines.append([])
        lines[-1].append(shlex.quote(arg))
    return " \\\n  ".join(" ".join(line) for line in lines) + "\n"


def mounts(paths: list[str]) -> list[str]:
    """Read-only volumes that mount each local path at the same place in the container (so that the run's
    pcopilot_config.yaml, which names its base by path, reads the same there), and the Hugging Face cache."""
    local = [str(Path(p).resolve()) for p in paths if Path(p).exists()]
    volumes = [f"{path}:{path}:ro" for path in dict.fromkeys(local)]
    return [*volumes, "${HF_HOME:-~/.cache/huggingface}:/root/.cache/huggingface"]


def compose_file(
    engine: dict[str, Any], front_argv: list[str], volumes: list[str], gpus: int | None
) -> dict[str, Any]:
    """A docker-compose document: the engine service (`engine` holds its image, entrypoint and command) and the
    front, built from the Dockerfile beside it; only the front's port is published (the engine has no API key)."""
    service: dict[str, Any] = {
        **engine,
        "volumes": list(volumes),
        "expose": [str(ENGINE_PORT)],
        "restart": "unless-stopped",
    }
    if gpus:
        devices = [{"driver": "nvidia", "count": gpus, "capabilities": ["gpu"]}]
        service["deploy"] = {"resources": {"reservations": {"devices": devices}}}
        service["ipc"] = "host"  # vLLM's tensor-parallel workers share memory through /dev/shm
    front = {
        "build": ".",
        "command": front_argv[1:],
        "ports": [f"{FRONT_PORT}:{FRONT_PORT}"],
        "volumes": list(volumes),  # a copy: YAML would write the shared list as an anchor and an alias
        "environment": {"PCOPILOT_API_KEY": "${PCOPILOT_API_KEY:?set the key editors will send}"},
        "depends_on": ["engine"],
        "restart": "unless-stopped",
    }
    return {"services": {"engine": service, "front": front}}


DOCKERFILE = """\
# The pcopilot front: every editor protocol, FIM prompts, API key and limits; the engine service generates.
FROM python:3.11-slim
RUN pip install --no-cache-dir 'personal-copilot[serve]'
ENTRYPOINT ["pcopilot"]
"""


def _write_deployment(
    output: Path, script: str, engine_argv: list[str], front_argv: list[str], compose: dict[str, Any], readme: str
) -> list[str]:
    """Writes the engine's script, the compose file, the front's Dockerfile and the README into `output`."""
    import yaml

    files = {
        script: "#!/bin/sh\n# The inference engine; the front (pcopilot serve --engine) runs with:\n"
        + "".join(f"#   {line}\n" for line in shell_command(front_argv).splitlines())
        + "exec "
        + shell_command(engine_argv),
        "docker-compose.yml": yaml.safe_dump(compose, sort_keys=False, width=1000),
        "Dockerfile": DOCKERFILE,
        "README.md": readme,
    }
    output.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        write_atomic(output / name, text)
    (output / script).chmod(0o755)
    return list(files)


def _vllm_readme(name: str, engine_argv: list[str], front_argv: list[str], notes: list[str]) -> str:
    return f"""# {name} on vLLM, behind `pcopilot serve --engine`

vLLM generates (continuous batching, paged KV cache, tensor parallelism, LoRA adapters side by side); the pcopilot
front in front of it speaks every editor protocol (TGI, OpenAI with `suffix`, Ollama, llama.cpp `/infill`), builds
the FIM prompts from the model family's sentinels, checks the API key and limits, and maps adapter names to vLLM's
LoRA modules. Only the front's port (8080) is published; vLLM has no key of its own here.

## Run it

    PCOPILOT_API_KEY=<the key editors send> docker compose up --build

or without containers, on the GPU machine and on any other:

```sh
{shell_command(engine_argv)}
{shell_command(front_argv).replace("http://engine:", "http://GPU-MACHINE:")}
```

Editors then point at `http://FRONT-MACHINE:8080` as they would at `pcopilot serve` (`pcopilot export editor`
writes their settings). Several fronts can run behind any load balancer: they hold no state.

{"".join(f"- {note}{chr(10)}" for note in notes)}
The flags above are checked against vLLM's documented engine arguments by personal-copilot's tests
(tests/export/vllm_serve_flags.txt names the source and version).
"""


def run_export_vllm(config: VllmConfig) -> EngineExportReport:
    """Writes the vLLM deployment of `config.model` and reports the commands."""
    from transformers import AutoConfig

    from personal_copilot.export.model_source import resolve_model_source
    from personal_copilot.serve import served_names
    from personal_copilot.train import EstimateConfig, run_estimate

    source = resolve_model_source(config.model)
    modules = [read_lora_module(source.name, source.adapter)] if source.adapter else []
    for name, path in config.adapter_paths().items():
        if name in (source.name, served_names(source).base) or name in {m.name for m in modules}:
            raise PcopilotError(f"--adapters {name}={path}: the name {name!r} is taken; choose another")
        modules.append(read_lora_module(name, path.resolve()))
    notes = []
    tensor_parallel = config.tensor_parallel_size
    if tensor_parallel is None:
        estimate = run_estimate(EstimateConfig(model=source.base, method="lora"))
        memory = {fit.gpu: fit.memory_gb for fit in estimate.fits}
        if config.gpu not in memory:
            raise PcopilotError(f"--gpu {config.gpu!r} is not one of {', '.join(memory)}")
        heads = getattr(AutoConfig.from_pretrained(source.base), "num_attention_heads", None)
        tensor_parallel = tensor_parallel_size(estimate.params, memory[config.gpu], heads)
        notes.append(
            f"--tensor-parallel-size {tensor_parallel}: {estimate.params / 1e9:.2f}B parameters in bf16 on "
            f"{config.gpu} ({memory[config.gpu]:g} GB), from `pcopilot estimate`'s parameter count"
        )
    if source.record is not None and source.record.trained_on_4bit_base:
        notes.append(
            "QLoRA run: vLLM applies its adapter to the bf16 base (as `pcopilot export gguf` merges it), not to the "
            "4-bit base it was trained on; `pcopilot eval --model` on the merged model measures the difference"
        )
    base = str(Path(source.base).resolve()) if Path(source.base).is_dir() else source.base
    engine_argv = vllm_command(base, served_names(source).base, modules, tensor_parallel, config.max_model_len)
    run_path = str(Path(config.model).resolve()) if Path(config.model).exists() else config.model
    extra = [m.name for m in modules if m.name != source.name]
    front_argv = front_command(run_path, f"http://engine:{ENGINE_PORT}", extra)
    volumes = mounts([base, run_path, *(str(m.path) for m in modules)])
    engine = {"image": config.image, "entrypoint": ["vllm", "serve"], "command": engine_argv[2:]}
    compose = compose_file(engine, front_argv, volumes, gpus=tensor_parallel)
    readme = _vllm_readme(source.name, engine_argv, front_argv, notes)
    files = _write_deployment(config.output, "vllm_serve.sh", engine_argv, front_argv, compose, readme)
    report = EngineExportReport(
        engine="vllm",
        output=str(config.output),
        engine_command=engine_argv,
        front_command=front_argv,
        files=files,
        tensor_parallel_size=tensor_parallel,
        lora_modules={m.name: str(m.path) for m in modules},
        notes=notes,
    )
    write_run_config(config.output, "export vllm", config)
    write_report(config.output, report)
    return report


def run_export_llamacpp_server(config: LlamaCppServerConfig) -> EngineExportReport:
    """Writes the llama.cpp server deployment of `config.gguf` and reports the commands."""
    from personal_copilot.export.gguf_metadata import read_gguf
    from personal_copilot.export.local import default_context_window

    gguf = config.gguf.resolve()
    if not gguf.is_file():
        raise PcopilotError(f"--gguf {config.gguf}: no such file; make it with `pcopilot export gguf`")
    context = default_context_window(read_gguf(gguf), config.context_window)
    engine_argv = llama_server_command(str(gguf), context, config.parallel, gguf_fim_layout(gguf, config.fim_layout))
    run_path = str(Path(config.model).resolve()) if Path(config.model).exists() else config.model
    front_argv = front_command(run_path, f"http://engine:{ENGINE_PORT}", [])
    compose = compose_file(
        {"image": config.image, "command": engine_argv[1:]}, front_argv, mounts([str(gguf), run_path]), None
    )
    notes = [f"{config.parallel} requests at once, {context} tokens each (-c is their total)"]
    readme = f"""# {gguf.name} on llama.cpp's server, behind `pcopilot serve --engine`

llama.cpp's `llama-server` generates from the GGUF (on a CPU box, or a GPU build); the pcopilot front in front of
it speaks every editor protocol, builds the FIM prompts from the model family's sentinels, checks the API key and
limits. Only the front's port (8080) is published.

    PCOPILOT_API_KEY=<the key editors send> docker compose up --build

or without containers:

```sh
{shell_command(engine_argv)}
{shell_command(front_argv).replace("http://engine:", "http://ENGINE-MACHINE:")}
```

- {notes[0]}
- The same front was tested against llama-cpp-python's server (`python -m llama_cpp.server --model {gguf.name}`),
  which also speaks OpenAI's /v1/completions.
"""
    files = _write_deployment(config.output, "llama_server.sh", engine_argv, front_argv, compose, readme)
    report = EngineExportReport(
        engine="llamacpp-server",
        output=str(config.output),
        engine_command=engine_argv,
        front_command=front_argv,
        files=files,
        notes=notes,
    )
    write_run_config(config.output, "export llamacpp-server", config)
    write_report(config.output, report)
    return report
