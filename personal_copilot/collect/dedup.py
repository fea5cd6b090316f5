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


def normalized_hash(text: str) -> str:
    """SHA-256 of the text with line endings unified, trailing spaces and surrounding blank lines removed."""
    normalized = _TRAILING_SPACE.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip("\n")
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


@cache
def _permutations(num_perm: int) -> np.ndarray:
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=_MINHASH_SEED, scheme=_SCHEME).permutations


def minhash_signature(text: str, dedup: DedupConfig) -> bytes:
    """The MinHash signature (num_perm uint64 values, as bytes) of the text's word shingles."""
    from datasketch import MinHash

    tokens = _TOKEN.findall(text)
    size = dedup.shingle_size
    shingles = {" ".join(tokens[i : i + size]).encode() for i in range(max(1, len(tokens) - size + 1))}
    minhash = MinHash(
        num_perm=dedup.num_perm, seed=_MINHASH_SEED, permutations=_permutations(dedup.num_perm), scheme=_SCHEME
    )
    minhash.update_batch(sorted(shingles))
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
