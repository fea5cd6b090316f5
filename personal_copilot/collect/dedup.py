"""Duplicate removal: exact (normalized content hash) and near (MinHash LSH over token shingles).

MinHash signatures and the LSH banding are datasketch's (affine32 scheme, its optimal bands), computed in numpy
without importing datasketch (which pulls in scipy: 0.4 s of CPU per run). Fingerprints are computed where files are
read (in worker processes); `find_duplicates` then walks all files in a fixed order (repo_id, file_path) and keeps
the first of each group, so the same input gives the same rows.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from personal_copilot.collect.config import DedupConfig

_TOKEN = re.compile(r"\w+")
_MINHASH_SEED = 1
_SCHEME = "affine32"
_SHINGLE_MULTIPLIER = np.uint64(1_000_003)
_MASK32 = np.uint64(0xFFFFFFFF)
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))
_SIGNATURE_BLOCK = 4096
"""Shingles per block of the (shingles x permutations) product, to bound memory on large files."""


def normalized_hash(text: str) -> str:
    """SHA-256 of the text with line endings unified, trailing spaces and surrounding blank lines removed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    normalized = "\n".join(line.rstrip(" \t") for line in lines).strip("\n")
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


@cache
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations (a odd, b) for our seed, drawn as `MinHash._init_permutations` draws them
    (without importing datasketch, which pulls in scipy)."""
    generator = np.random.RandomState(_MINHASH_SEED)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(values: np.ndarray) -> np.ndarray:
    """The MurmurHash3 finalizer datasketch's affine32 scheme applies to every input hash before permuting it."""
    s1, m1, s2, m2, s3 = _FMIX32
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s3)


_TOKEN_BASE = 0x01000193
_TOKEN_BASE_INVERSE = pow(_TOKEN_BASE, -1, 1 << 32)


def token_hashes(tokens: list[str]) -> np.ndarray:
    """32-bit hashes of the tokens, all at once in numpy: fmix32 of the polynomial sum(c_i * B^(n-1-i)) mod 2^32 over
    each token's code points. Computed as B^(end-1) * (segment sum of c_i * B^-i), B odd hence invertible."""
    lengths = np.fromiter(map(len, tokens), np.int64, len(tokens))
    codes = np.frombuffer("".join(tokens).encode("utf-32-le"), np.uint32)
    if len(codes) == 0:
        return np.zeros(len(tokens), dtype=np.uint32)
    with np.errstate(over="ignore"):
        powers = np.ones(len(codes), dtype=np.uint32)
        powers[1:] = np.cumprod(np.full(len(codes) - 1, _TOKEN_BASE, np.uint32), dtype=np.uint32)
        inverse_powers = np.ones(len(codes), dtype=np.uint32)
        inverse_powers[1:] = np.cumprod(np.full(len(codes) - 1, _TOKEN_BASE_INVERSE, np.uint32), dtype=np.uint32)
        ends = np.cumsum(lengths)
        sums = np.add.reduceat(codes * inverse_powers, ends - lengths, dtype=np.uint32)
        return _fmix32(sums * powers[ends - 1])


def shingle_hashes(text: str, size: int) -> np.ndarray:
    """32-bit hashes of the text's shingles (runs of `size` word tokens; the whole text when it is shorter),
    combined from per-token hashes with numpy instead of hashing every shingle's bytes."""
    ids = token_hashes(_TOKEN.findall(text) or [""]).astype(np.uint64)
    count = max(1, len(ids) - size + 1)
    hashes = np.zeros(count, dtype=np.uint64)
    for offset in range(min(size, len(ids))):
        hashes = (hashes * _SHINGLE_MULTIPLIER + ids[offset : offset + count]) & _MASK32
    return hashes


def minhash_signature(text: str, dedup: DedupConfig) -> bytes:
    """The MinHash signature (num_perm uint64 values, as bytes) of the text's word shingles: the values datasketch's
    `MinHash(scheme="affine32", hashfunc=int).update_batch` gives, computed directly in numpy (0.4x the CPU)."""
    a, b = _permutations(dedup.num_perm)
    hashes = _fmix32(shingle_hashes(text, dedup.shingle_size).astype(np.uint32))
    signature = np.full(dedup.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for start in range(0, len(hashes), _SIGNATURE_BLOCK):
            block = hashes[start : start + _SIGNATURE_BLOCK, None]
            np.minimum(signature, (block * a + b).min(axis=0), out=signature)
    return signature.astype(np.uint64).tobytes()


@dataclass(frozen=True)
class Duplicates:
    """Indices (into the ordered file list) of files to drop, by kind, with the index of the file each repeats."""

    exact: dict[int, int]
    near: dict[int, int]


def find_duplicates(hashes: Sequence[str], signatures: Sequence[bytes], dedup: DedupConfig) -> Duplicates:
    """Marks every file that repeats an earlier one: the same normalized hash, or (near) an estimated Jaccard
    similarity of at least `dedup.threshold` to a kept file. Files must be given in their canonical order."""
    exact: dict[int, int] = {}
    first_by_hash: dict[str, int] = {}
    for index, digest in enumerate(hashes):
        if dedup.exact and digest in first_by_hash:
            exact[index] = first_by_hash[digest]
        else:
            first_by_hash.setdefault(digest, index)
    near: dict[int, int] = {}
    if not dedup.near:
        return Duplicates(exact, near)
    bands, rows = lsh_bands(dedup.threshold, dedup.num_perm)
    tables: list[dict[bytes, list[int]]] = [defaultdict(list) for _ in range(bands)]
    for index, signature in enumerate(signatures):
        if index in exact:
            continue
        values = np.frombuffer(signature, dtype=np.uint64)
        keys = [values[band * rows : (band + 1) * rows].tobytes() for band in range(bands)]
        candidates = sorted({c for table, key in zip(tables, keys, strict=True) for c in table.get(key, ())})
        # LSH proposes candidates; keep the verdict to those whose estimated similarity really passes the threshold.
        match = next(
            (c for c in candidates if np.mean(values == np.frombuffer(signatures[c], np.uint64)) >= dedup.threshold),
            None,
        )
        if match is None:
            for table, key in zip(tables, keys, strict=True):
                table[key].append(index)
        else:
            near[index] = match
    return Duplicates(exact, near)


@cache
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) as datasketch's `MinHashLSH(threshold, num_perm)` chooses them: the least sum of the
    false positive and false negative probabilities (equal weights). The integrands are polynomials of degree at
    most num_perm, which num_perm Gauss-Legendre points integrate exactly (datasketch asks scipy's `quad`)."""
    nodes, weights = np.polynomial.legendre.leggauss(max(64, num_perm))
    below = threshold / 2 * (nodes + 1)  # nodes mapped onto [0, threshold] and [threshold, 1]
    above = threshold + (1 - threshold) / 2 * (nodes + 1)
    best, choice = float("inf"), (0, 0)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_positive = threshold / 2 * np.sum(weights * (1 - (1 - below**rows) ** bands))
            false_negative = (1 - threshold) / 2 * np.sum(weights * (1 - above**rows) ** bands)
            error = 0.5 * false_positive + 0.5 * false_negative
            if error < best:
                best, choice = error, (bands, rows)
    return choice
