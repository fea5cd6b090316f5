"""Notebook reduction, secret redaction and duplicate detection as units."""

from __future__ import annotations

import pytest

from personal_copilot.collect.config import DedupConfig
from personal_copilot.collect.dedup import find_duplicates, minhash_signature, normalized_hash
from personal_copilot.collect.notebooks import notebook_to_code
from personal_copilot.collect.secrets import redact_secrets
from tests.collect.conftest import module_source, notebook


def test_cells_are_kept_apart_and_outputs_dropped() -> None:
    text = notebook(
        [
            {"cell_type": "code", "source": ["def f():\n", "    return 1"], "outputs": [{"text": "1"}]},
            {"cell_type": "markdown", "source": "prose"},
            {"cell_type": "code", "source": "f()"},
        ]
    )
    assert notebook_to_code(text) == ("python", "# %%\ndef f():\n    return 1\n\n# %%\nf()\n")


def test_notebook_language_and_comment_marker() -> None:
    language, code = notebook_to_code(notebook([{"cell_type": "code", "source": "x <- 1"}], language="R"))
    assert (language, code) == ("r", "# %%\nx <- 1\n")


@pytest.mark.parametrize(
    "text",
    ["[]", "{}", '{"cells": "x"}', '{"cells": [1]}', '{"cells": [{"cell_type": "code", "source": 3}]}', "{"],
)
def test_malformed_notebooks_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        notebook_to_code(text)


@pytest.mark.parametrize(
    ("line", "redacted", "kind"),
    [
        ('k = "AKIAIOSFODNN7EXAMPLE"', 'k = "<SECRET:aws_access_key>"', "aws_access_key"),
        (
            'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            'aws_secret_access_key = "<SECRET:aws_access_key>"',
            "aws_access_key",
        ),
        ("t = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'", "t = '<SECRET:github_token>'", "github_token"),
        ("t = 'glpat-abcdefghij1234567890'", "t = '<SECRET:gitlab_token>'", "gitlab_token"),
        (
            "url = 'mysql://root:s3cr3t@localhost/db'",
            "url = 'mysql://root:<SECRET:basic_auth_credentials>@localhost/db'",
            "basic_auth_credentials",
        ),
        (
            "jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'",
            "jwt = '<SECRET:json_web_token>'",
            "json_web_token",
        ),
        ("k = 'sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst'", "k = '<SECRET:openai_token>'", "openai_token"),
        # Detectors without a literal prefix scan only lines with a long token run: still found.
        (
            "BOT = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1'",
            "BOT = '<SECRET:telegram_bot_token>'",
            "telegram_bot_token",
        ),
        (
            "mc = '0123456789abcdef0123456789abcdef-us12'",
            "mc = '<SECRET:mailchimp_access_key>'",
            "mailchimp_access_key",
        ),
    ],
)
def test_redaction_by_kind(line: str, redacted: str, kind: str) -> None:
    assert redact_secrets(line) == (redacted, {kind: 1})


def test_private_key_block_is_replaced_whole() -> None:
    text = (
        "KEY = '''-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA\n-----END OPENSSH PRIVATE KEY-----'''\n"
    )
    assert redact_secrets(text) == ("KEY = '''<SECRET:private_key>'''\n", {"private_key": 1})


def test_ordinary_code_is_left_alone() -> None:
    code = (
        "def login(password):\n    if password == get_password():\n        pass\n    return 'https://example.com/x'\n"
    )
    assert redact_secrets(code) == (code, {})


def test_normalized_hash_ignores_line_endings_and_trailing_space() -> None:
    assert normalized_hash("a = 1\nb = 2\n") == normalized_hash("\r\na = 1  \r\nb = 2\t\r\n\r\n")
    assert normalized_hash("a = 1\n") != normalized_hash("a = 2\n")


def test_find_duplicates_keeps_the_first_of_each_group() -> None:
    dedup = DedupConfig()
    texts = [
        module_source("one"),
        module_source("two"),
        module_source("one").replace("+ 3\n", "+ 33\n"),  # near duplicate of 0
        module_source("one"),  # exact duplicate of 0
        module_source("two", functions=12),  # shares a third of its shingles with 1: not near
    ]
    duplicates = find_duplicates(
        [normalized_hash(t) for t in texts], [minhash_signature(t, dedup) for t in texts], dedup
    )

    assert duplicates.exact == {3: 0}
    assert duplicates.near == {2: 0}
    off = DedupConfig(exact=False, near=False)
    assert find_duplicates([normalized_hash(t) for t in texts], [b""] * 5, off) == type(duplicates)({}, {})


def test_minhash_is_deterministic() -> None:
    text = module_source("stable")
    assert minhash_signature(text, DedupConfig()) == minhash_signature(text, DedupConfig())
    assert len(minhash_signature(text, DedupConfig(num_perm=64))) == 64 * 8


def test_dedup_config_is_checked() -> None:
    with pytest.raises(ValueError, match=r"--dedup\.threshold"):
        DedupConfig(threshold=1.5)


def test_every_fake_token_of_the_fixture_is_redacted_under_its_kind() -> None:
    from tests.collect.fake_tokens import FAKE_TOKENS

    missed = {}
    for kind, pairs in FAKE_TOKENS.items():
        for line, token in pairs:
            redacted, found = redact_secrets(line)
            if token in redacted or found != {kind: 1}:
                missed.setdefault(kind, []).append((redacted, dict(found)))
    assert missed == {}


def test_fake_tokens_in_one_file_are_all_redacted() -> None:
    from tests.collect.fake_tokens import FAKE_TOKENS

    lines = [line for pairs in FAKE_TOKENS.values() for line, _ in pairs]
    redacted, found = redact_secrets("\n".join(lines) + "\n")
    assert [token for pairs in FAKE_TOKENS.values() for _, token in pairs if token in redacted] == []
    assert found == {kind: len(pairs) for kind, pairs in FAKE_TOKENS.items()}


def test_code_that_only_looks_like_a_secret_is_left_alone() -> None:
    from tests.collect.fake_tokens import HARMLESS_LINES

    for line in HARMLESS_LINES:
        assert redact_secrets(line) == (line, {})


@pytest.mark.parametrize("dedup", [DedupConfig(), DedupConfig(num_perm=64, shingle_size=3)])
def test_minhash_signature_equals_datasketch(dedup: DedupConfig) -> None:
    import numpy as np
    from datasketch import MinHash

    from personal_copilot.collect.dedup import shingle_hashes

    for text in [module_source("a"), module_source("b", functions=300), "", "x", "é ü " * 50]:
        reference = MinHash(num_perm=dedup.num_perm, seed=1, hashfunc=int, scheme="affine32")
        reference.update_batch(shingle_hashes(text, dedup.shingle_size))
        assert minhash_signature(text, dedup) == reference.hashvalues.astype(np.uint64).tobytes()


def test_trailing_space_normalisation_matches_the_regex_it_replaced() -> None:
    import hashlib
    import re

    for text in ["a  \nb\t\n", "x \r\n\r\ny\t \r", "  \n\n", "no newline  ", "\u3000full width\u3000 \n"]:
        unified = text.replace("\r\n", "\n").replace("\r", "\n")
        expected = re.sub(r"[ \t]+$", "", unified, flags=re.MULTILINE).strip("\n")
        assert normalized_hash(text) == hashlib.sha256(expected.encode()).hexdigest()


def test_alnum_count_matches_str_isalnum() -> None:
    from personal_copilot.collect.filters import alnum_count

    for text in ["abc 123 !!", "", "ÀÉ 1 ½ ٣", "x" * 100 + "_-+", "\x00\x7f"]:
        assert alnum_count(text) == sum(map(str.isalnum, text))


def test_token_hashes_equal_the_polynomial_they_vectorize() -> None:
    import numpy as np

    from personal_copilot.collect.dedup import _TOKEN_BASE, _fmix32, token_hashes

    def polynomial(token: str) -> int:
        value = 0
        for char in token:
            value = (value * _TOKEN_BASE + ord(char)) % (1 << 32)
        return value

    tokens = ["def", "x", "naïve_名前", "a" * 300, "x", "_", "0123456789"]
    expected = _fmix32(np.array([polynomial(t) for t in tokens], dtype=np.uint32))
    assert token_hashes(tokens).tolist() == expected.tolist()
    assert token_hashes([""]).tolist() == [0]
    assert len(set(token_hashes([f"name_{i}" for i in range(5000)]).tolist())) == 5000


def test_lsh_bands_are_the_ones_datasketch_chooses() -> None:
    from datasketch.lsh import _optimal_param

    from personal_copilot.collect.dedup import lsh_bands

    for threshold in (0.5, 0.7, 0.85, 0.9, 0.95, 1.0):
        for num_perm in (16, 64, 128, 256):
            assert lsh_bands(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)
