"""The base model's corpus: the interpreter's standard library plus the Python sources of the permissively licensed
packages installed beside it, collected and deduplicated by `pcopilot collect`, then split into the training set and
two "general code" test sets the base never sees: a slice of the standard library and a few whole packages.

A package is used only when its metadata names licenses that are all permissive (MIT, BSD, Apache, PSF, ISC, …);
one copyleft or unknown license excludes it, and the reason is recorded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

STDLIB_REPO = "stdlib"
STDLIB_EXCLUDES = (
    "test/*", "*/test/*", "*/tests/*", "idlelib/*", "turtledemo/*", "pydoc_data/*", "encodings/*", "ensurepip/*",
    "lib2to3/*", "tkinter/*", "distutils/*", "site-packages/*", "config-*/*", "__phello__/*",
)  # fmt: skip
"""Tests, generated tables and GUI demos are not the general code a base model should learn from."""
PACKAGE_EXCLUDES = ("tests/*", "*/tests/*", "testing/*", "*/testing/*", "*/_vendor/*", "*/vendored/*")
"""Packages' own test suites and vendored copies of other projects."""
NEVER_PACKAGES = frozenset({"personal-copilot", "pip", "setuptools"})
"""Our own code (the quickstart's "own code" must be new to the base) and installer internals."""

_PERMISSIVE = re.compile(
    r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC|Zlib|0BSD|CC0|Unlicense|HPND|BSL-1\.0|CNRI-Python"
    r"|Historical Permission)",
    re.IGNORECASE,
)
_COPYLEFT = re.compile(r"(GPL|MPL|Mozilla|EPL|EUPL|CDDL|copyleft|Commons Clause|proprietary)", re.IGNORECASE)


@dataclass(frozen=True)
class PackageSource:
    """An installed distribution considered for the corpus."""

    name: str
    version: str
    license: str
    """The license as the metadata states it (expression, short field or classifiers)."""
    folders: tuple[str, ...]
    """Its top-level package folders (absolute paths)."""
    permissive: bool
    reason: str
    """Why it is used or left out."""


def stated_license(metadata: importlib.metadata.PackageMetadata) -> str:
    """The license a distribution states: SPDX `License-Expression`, else a short `License` field, else classifiers."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return expression
    field = (metadata.get("License") or "").strip()
    classifiers = [c.split("::")[-1].strip() for c in metadata.get_all("Classifier") or [] if c.startswith("License")]
    if field and field.upper() != "UNKNOWN" and len(field) <= 80 and "\n" not in field:
        return field
    return " AND ".join(classifiers) or field[:80]


def is_permissive(license_text: str) -> tuple[bool, str]:
    """(usable, reason): every license named must be permissive; no copyleft term may appear."""
    if not license_text.strip():
        return False, "no license in its metadata"
    if match := _COPYLEFT.search(license_text):
        return False, f"not permissive ({match.group(0)})"
    parts = [p for p in re.split(r"\s+(?:AND|OR|WITH)\s+|,|;", license_text) if p.strip()]
    unknown = [p.strip() for p in parts if not _PERMISSIVE.search(p) and "exception" not in p.lower()]
    if unknown:
        return False, f"license not recognised as permissive: {unknown[0]!r}"
    return True, "permissive"


def _top_level_folders(distribution: importlib.metadata.Distribution, site_packages: Path) -> tuple[str, ...]:
    names = set()
    for file in distribution.files or []:
        parts = Path(file).parts
        if len(parts) > 1 and parts[-1].endswith(".py") and not parts[0].endswith((".dist-info", ".egg-info", "..")):
            names.add(parts[0])
    return tuple(str(site_packages / n) for n in sorted(names) if (site_packages / n).is_dir() and n != "__pycache__")


def installed_packages(site_packages: Path | None = None) -> list[PackageSource]:
    """Every distribution installed in `site_packages` (default: this interpreter's), with its license verdict."""
    site_packages = Path(site_packages or sysconfig.get_paths()["purelib"])
    found: dict[str, PackageSource] = {}
    for distribution in importlib.metadata.distributions(path=[str(site_packages)]):
        name = distribution.metadata["Name"]
        if not name or name.lower() in found:
            continue
        license_text = stated_license(distribution.metadata)
        permissive, reason = is_permissive(license_text)
        folders = _top_level_folders(distribution, site_packages)
        if name.lower() in NEVER_PACKAGES:
            permissive, reason = False, "never used (our own code or an installer)"
        elif not folders:
            permissive, reason = False, "no package folder with Python sources"
        found[name.lower()] = PackageSource(name, distribution.version, license_text, folders, permissive, reason)
    return sorted(found.values(), key=lambda p: p.name.lower())


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def rank(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{name}".encode()).digest()


def held_out_names(names: list[str], fraction: float, seed: int, minimum: int = 1) -> list[str]:
    """The `fraction` of `names` (at least `minimum`) with the smallest seeded hash: deterministic, order-free."""
    if fraction <= 0 or len(names) <= minimum:
        return []
    count = max(minimum, round(fraction * len(names)))
    return sorted(sorted(names, key=lambda name: rank(seed, name))[:count])


def stdlib_module(repo_id: str, file_path: str) -> str:
    """The top-level standard-library module a file belongs to (`json/decoder.py` -> `json`, `csv.py` -> `csv`);
    a source collected as `stdlib:NAME` is module NAME."""
    if ":" in repo_id:
        return repo_id.split(":", 1)[1]
    return file_path.split("/", 1)[0].removesuffix(".py")
