"""Where llama.cpp's converter comes from: --llama_cpp_dir, $LLAMA_CPP_DIR, the user cache, an sdist unpacked."""

from __future__ import annotations

import io
import tarfile
from importlib import metadata
from pathlib import Path

import pytest

from personal_copilot.errors import PcopilotError
from personal_copilot.export import LLAMA_CPP_DIR_ENV, converter_cache_dir, find_converter
from personal_copilot.export.converter import unpack_converter

CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion/__init__.py", "gguf-py/gguf/__init__.py")


def fake_llama_cpp(root: Path) -> Path:
    for name in CONVERTER_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# converter\n")
    return root


def test_explicit_directory_then_environment(tmp_path: Path, monkeypatch) -> None:
    flag, env = fake_llama_cpp(tmp_path / "flag"), fake_llama_cpp(tmp_path / "env")
    monkeypatch.setenv(LLAMA_CPP_DIR_ENV, str(env))

    assert find_converter(flag) == flag.resolve()
    assert find_converter() == env.resolve()


def test_a_checkout_without_the_packaged_converter_is_named(tmp_path: Path, monkeypatch) -> None:
    old = tmp_path / "old-llama.cpp"
    old.mkdir()
    (old / "convert_hf_to_gguf.py").write_text("# one big script, before conversion/ existed\n")

    with pytest.raises(PcopilotError, match=r"--llama_cpp_dir .* \(missing: conversion/__init__.py, gguf-py"):
        find_converter(old)
    monkeypatch.setenv(LLAMA_CPP_DIR_ENV, str(old))
    with pytest.raises(PcopilotError, match=r"\$LLAMA_CPP_DIR"):
        find_converter()


def test_the_cached_converter_of_the_installed_version_is_used_without_fetching(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(LLAMA_CPP_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    version = metadata.version("llama-cpp-python").split("+")[0]
    cached = fake_llama_cpp(converter_cache_dir() / f"llama-cpp-python-{version}")

    assert converter_cache_dir() == tmp_path / "personal_copilot" / "llama.cpp"
    assert find_converter() == cached


def test_unpacking_an_sdist_keeps_only_the_converter(tmp_path: Path) -> None:
    sdist = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    vendor = "llama_cpp_python-9.9.9/vendor/llama.cpp/"
    files = [vendor + name for name in (*CONVERTER_FILES, "LICENSE", "conversion/llama.py", "src/llama.cpp")]
    files += ["llama_cpp_python-9.9.9/llama_cpp/llama.py"]
    with tarfile.open(sdist, "w:gz") as archive:
        for name in files:
            data = b"x = 1\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

    unpack_converter(sdist, tmp_path / "out")

    unpacked = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert unpacked == sorted([*CONVERTER_FILES, "LICENSE", "conversion/llama.py"])


def test_an_sdist_without_a_converter_is_an_error(tmp_path: Path) -> None:
    sdist = tmp_path / "llama_cpp_python-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.addfile(tarfile.TarInfo("llama_cpp_python-0.1.0/setup.py"), io.BytesIO(b""))

    with pytest.raises(PcopilotError, match="has no vendored converter"):
        unpack_converter(sdist, tmp_path / "out")
