"""Duplicate removal: exact (normalized content hash) and near (MinHash LSH over token shingles).

Fingerprints are computed where files are read (in worker processes); `find_duplicates` then walks all files in
a fixed order (repo_id, file_path) and keeps the first of each group, so the same input gives the same rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from personal_copilot.collect.config import DedupConfig

_TOKEN = re.compile(r"\w+")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_MINHASH_SEED = 1
_SCHEME = "affine32"
_SHINGLE_MULTIPLIER = np.uint64(1_000_003)
_MASK32 = np.uint64(0xFFFFFFFF)


def normalized_hash(text: str) -> str:
    """SHA-256 of the text with line endings unified, trailing spaces and surrounding blank lines removed."""
    normalized = _TRAILING_SPACE.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip("\n")
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


@cache
def _permutations(num_perm: int) -> np.ndarray:
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=_MINHASH_SEED, scheme=_SCHEME).permutations


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")


def shingle_hashes(text: str, size: int) -> np.ndarray:
    """32-bit hashes of the text's shingles (runs of `size` word tokens; the whole text when it is shorter),
    combined from per-token hashes with numpy instead of hashing every shingle's bytes."""
    cache: dict[str, int] = {}
    tokens = _TOKEN.findall(text) or [""]
    ids = np.fromiter((cache.get(t) or cache.setdefault(t, _token_hash(t)) for t in tokens), np.uint64, len(tokens))
    count = max(1, len(ids) - size + 1)
    hashes = np.zeros(count, dtype=np.uint64)
    for offset in range(min(size, len(ids))):
        hashes = (hashes * _SHINGLE_MULTIPLIER + ids[offset : offset + count]) & _MASK32
    return hashes


def minhash_signature(text: str, dedup: DedupConfig) -> bytes:
    """The MinHash signature (num_perm uint64 values, as bytes) of the text's word shingles."""
    from datasketch import MinHash

    minhash = MinHash(
        num_perm=dedup.num_perm,
        seed=_MINHASH_SEED,
        hashfunc=int,
        permutations=_permutations(dedup.num_perm),
        scheme=_SCHEME,
    )
    minhash.update_batch(shingle_hashes(text, dedup.shingle_size))
    return minhash.hashvalues.astype(np.uint64).tobytes()


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
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(threshold=dedup.threshold, num_perm=dedup.num_perm)
    for index, signature in enumerate(signatures):
        if index in exact:
            continue
        values = np.frombuffer(signature, dtype=np.uint64)
        minhash = LeanMinHash(seed=_MINHASH_SEED, hashvalues=values, scheme=_SCHEME)
        candidates = sorted(lsh.query(minhash))
        # LSH proposes candidates; keep the verdict to those whose estimated similarity really passes the threshold.
        match = next(
            (c for c in candidates if np.mean(values == np.frombuffer(signatures[c], np.uint64)) >= dedup.threshold),
            None,
        )
        if match is None:
            lsh.insert(index, minhash)
        else:
            near[index] = match
    return Duplicates(exact, near)
