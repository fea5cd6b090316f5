"""llama.cpp's HF -> GGUF converter: where it comes from, and running it.

The converter (`convert_hf_to_gguf.py` with its `conversion/` package and `gguf-py/`) is not in any wheel. It comes
from, in this order: `--llama_cpp_dir`, `$LLAMA_CPP_DIR` (a llama.cpp checkout), or the llama-cpp-python sdist of the
installed version, downloaded once with pip and unpacked into the user cache. Converter and runtime then come from
the same llama.cpp commit. It runs in a child process (`converter_child`) so that its `sys.path` entries, its own
`gguf` copy and its logging stay out of this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from personal_copilot.console import progress_enabled, stderr
from personal_copilot.errors import PcopilotError

LLAMA_CPP_DIR_ENV = "LLAMA_CPP_DIR"
SCRIPT = "convert_hf_to_gguf.py"
_NEEDED = (SCRIPT, "conversion/__init__.py", "gguf-py/gguf/__init__.py")
_SDIST_MEMBERS = (SCRIPT, "conversion/", "gguf-py/", "LICENSE")
PRE_TOKENIZER_UNKNOWN = "BPE pre-tokenizer was not recognized"


def converter_cache_dir() -> Path:
    """Where converters unpacked from llama-cpp-python sdists are kept (one folder per version)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "personal_copilot" / "llama.cpp"


def _missing_files(directory: Path) -> list[str]:
    return [name for name in _NEEDED if not (directory / name).is_file()]


def _installed_llama_cpp_python() -> str:
    try:
        return metadata.version("llama-cpp-python").split("+")[0]
    except metadata.PackageNotFoundError as error:
        raise PcopilotError(
            "GGUF export needs llama-cpp-python and gguf: pip install 'personal-copilot[gguf]' "
            "(llama-cpp-python builds from source in a few minutes)"
        ) from error


def find_converter(llama_cpp_dir: Path | None = None) -> Path:
    """The llama.cpp directory whose converter to run, fetching the sdist's copy into the cache when needed.

    Raises:
        PcopilotError: the given directory lacks the converter, or the sdist cannot be fetched.
    """
    given = llama_cpp_dir or os.environ.get(LLAMA_CPP_DIR_ENV)
    if given:
        directory = Path(given).expanduser().resolve()
        missing = _missing_files(directory)
        if missing:
            origin = "--llama_cpp_dir" if llama_cpp_dir else f"${LLAMA_CPP_DIR_ENV}"
            raise PcopilotError(
                f"{origin} {directory} is not a llama.cpp checkout with the packaged converter (missing: "
                f"{', '.join(missing)}); update the checkout, or leave {origin} unset to use the converter of the "
                "installed llama-cpp-python"
            )
        return directory
    version = _installed_llama_cpp_python()
    directory = converter_cache_dir() / f"llama-cpp-python-{version}"
    if _missing_files(directory):
        _fetch_from_sdist(version, directory)
    return directory


def _fetch_from_sdist(version: str, directory: Path) -> None:
    """Downloads the llama-cpp-python sdist with pip and unpacks its vendored converter into `directory`."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    stderr.print(f"fetching llama.cpp's converter from the llama-cpp-python {version} sdist (once) into {directory}")
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=".fetch-") as work:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += [f"llama-cpp-python=={version}", "--dest", work] + ([] if progress_enabled() else ["--quiet"])
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        archives = list(Path(work).glob("llama_cpp_python-*.tar.gz"))
        if result.returncode != 0 or not archives:
            raise PcopilotError(
                f"could not download the llama-cpp-python=={version} sdist with pip, which holds llama.cpp's "
                f"converter:\n{result.stdout.strip()[-2000:]}\nPoint --llama_cpp_dir (or ${LLAMA_CPP_DIR_ENV}) at a "
                "llama.cpp checkout, or at the vendor/llama.cpp folder of that sdist unpacked by hand"
            )
        unpacked = Path(work) / "llama.cpp"
        unpack_converter(archives[0], unpacked)
        try:
            unpacked.rename(directory)
        except OSError:
            if _missing_files(directory):  # not a concurrent fetch that finished first
                raise


def unpack_converter(sdist: Path, directory: Path) -> None:
    """Unpacks the converter of a llama-cpp-python sdist (`vendor/llama.cpp/`: the script, `conversion/`,
    `gguf-py/`, the licence) into `directory`, and nothing else.

    Raises:
        PcopilotError: the sdist has no vendored converter.
    """
    with tarfile.open(sdist) as archive:
        vendor = f"{sdist.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        members = []
        for member in archive.getmembers():
            relative = member.name.removeprefix(vendor)
            if member.name.startswith(vendor) and relative.startswith(_SDIST_MEMBERS):
                member.name = relative
                members.append(member)
        archive.extractall(directory, members=members, filter="data")
    missing = _missing_files(directory)
    if missing:
        raise PcopilotError(
            f"{sdist.name} has no vendored converter ({', '.join(missing)} missing); point --llama_cpp_dir at a "
            "llama.cpp checkout"
        )


def check_convertible(config: dict[str, Any]) -> None:
    """Fails before any work on model shapes the converter writes wrongly (`config`: the HF config as a dict)."""
    n_inner, n_embd = config.get("n_inner"), config.get("n_embd")
    if config.get("model_type") == "gpt_bigcode" and n_inner not in (None, 4 * n_embd):
        raise PcopilotError(
            f"llama.cpp's converter writes a GPT-BigCode model's feed-forward size as 4 x n_embd ({4 * n_embd}), "
            f"but this model has n_inner {n_inner}: llama.cpp could not load the GGUF. Published StarCoder / "
            "SantaCoder checkpoints (and scratch:tiny-starcoder) have 4 x n_embd"
        )


@dataclass(frozen=True)
class ConversionSpec:
    """What the child process needs besides the converter's own arguments."""

    architecture: str
    """The HF architecture (config.json `architectures[0]`) whose converter class gets our subclass."""
    pre_tokenizer: str | None
    """llama.cpp pre-tokenizer to write when the converter's hash table does not know the tokenizer."""
    metadata: dict[str, int]
    """Extra integer keys for the GGUF header (the FIM token ids)."""


def run_converter(
    llama_cpp_dir: Path, spec: ConversionSpec, model_dir: Path, output: Path, outtype: str, log: Path
) -> None:
    """Converts the HF model in `model_dir` to `output`; on failure writes the converter's output to `log`.

    Raises:
        PcopilotError: the converter failed (with the end of its log and the reason when it is a known one).
    """
    command = [sys.executable, "-m", "personal_copilot.export.converter_child", str(llama_cpp_dir)]
    command += [json.dumps(asdict(spec)), str(model_dir), "--outfile", str(output), "--outtype", outtype]
    package_root = str(Path(__file__).resolve().parents[2])  # the child imports this very personal_copilot
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = os.environ | {"PYTHONPATH": python_path}
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if result.returncode == 0 and output.is_file():
        return
    log.write_text(result.stdout, encoding="utf-8")
    tail = "\n".join(result.stdout.strip().splitlines()[-15:])
    if PRE_TOKENIZER_UNKNOWN in result.stdout:
        raise PcopilotError(
            f"llama.cpp's converter does not know the pre-tokenizer of {model_dir} (it identifies one by a hash of "
            "token ids) and its tokenizer.json pre_tokenizer is not one personal-copilot can map to a llama.cpp "
            f"pre-tokenizer (GPT-2 byte-level, or StarCoder's digits + byte-level). Full log: {log}"
        )
    raise PcopilotError(f"llama.cpp's converter failed on {model_dir} (exit {result.returncode}):\n{tail}\nlog: {log}")
