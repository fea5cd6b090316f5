"""Secret redaction, applied to whole files: detect-secrets' detectors where it has one, our own patterns for the
token formats it lacks (Hugging Face, Anthropic, newer OpenAI / Slack / Stripe keys, bare npm tokens, Google, Azure,
connection-string passwords).

Each detector's own patterns (and validation, e.g. JWT) find candidates; the matched secret is replaced with a
typed placeholder like `<SECRET:aws_access_key>`. A private key is replaced whole, from its BEGIN line to its END line.
Entropy and keyword detectors are left out on purpose: on source code they flag hashes, test vectors and
`password = get_password()` far more often than secrets.

Speed: most files hold no secret, so a detector only scans a file that contains one of the literals every match of
it must contain (`_LITERALS`); the detectors whose patterns have none scan only the lines holding a long token.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

_PLUGIN_NAMES = (
    "AWSKeyDetector",
    "BasicAuthDetector",
    "CloudantDetector",
    "DiscordBotTokenDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "IbmCloudIamDetector",
    "IbmCosHmacDetector",
    "JwtTokenDetector",
    "MailchimpDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SoftlayerDetector",
    "SquareOAuthDetector",
    "StripeDetector",
    "TelegramBotTokenDetector",
    "TwilioKeyDetector",
)
"""detect-secrets plugins used (its Azure one is replaced by `_OWN_PATTERNS`' wider AccountKey pattern)."""

_LITERALS: dict[str, tuple[tuple[str, ...], bool]] = {
    "AWSKeyDetector": (("A3T", "ABIA", "ACCA", "AKIA", "ASIA", "aws"), True),
    "BasicAuthDetector": (("://",), False),
    "GitHubTokenDetector": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), False),
    "GitLabTokenDetector": (
        (
            "glpat-",
            "gldt-",
            "glft-",
            "glsoat-",
            "glrt-",
            "GR1348941",
            "glcbt-",
            "glimt-",
            "glptt-",
            "glagent-",
            "gloas-",
        ),
        False,
    ),
    "JwtTokenDetector": (("eyJ",), False),
    "NpmDetector": ((":_authToken=",), False),
    "OpenAIDetector": (("T3BlbkFJ",), False),
    "PypiTokenDetector": (("pypi-",), False),
    "SendGridDetector": (("SG.",), False),
    "SlackDetector": (("xox", "hooks.slack.com"), True),
    "SquareOAuthDetector": (("sq0csp-",), False),
    "StripeDetector": (("k_live_",), False),
}
"""Per detector: literals one of which every match contains, and whether to look for them case-insensitively."""

_LONG_TOKEN_DETECTORS = frozenset(
    {
        "CloudantDetector",
        "DiscordBotTokenDetector",
        "IbmCloudIamDetector",
        "IbmCosHmacDetector",
        "MailchimpDetector",
        "SoftlayerDetector",
        "TelegramBotTokenDetector",
        "TwilioKeyDetector",
    }
)
"""Detectors whose patterns have no literal prefix (slow on whole files) but whose secrets always contain a run of
24+ token characters: they only scan the lines that hold such a run (4-5x faster redaction, same spans)."""
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-]{24,}")
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-+/=.]+")
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
_KIND_NAMES = {"npm_tokens": "npm_token"}


@dataclass(frozen=True)
class _Pattern:
    """One of our own detectors: a match (or its one group) is the secret, when the line also matches `context`."""

    kind: str
    regex: re.Pattern
    literals: tuple[str, ...]
    fold: bool = False
    context: re.Pattern | None = None


_CONNECTION_STRING = re.compile(r"(?:server|data source|host|uid|user id|username|database|initial catalog)\s*=", re.I)
_OWN_PATTERNS = (
    _Pattern("huggingface_token", re.compile(r"\b(?:hf|api_org)_[A-Za-z0-9]{34,}\b"), ("hf_", "api_org_")),
    _Pattern(
        "openai_token",
        re.compile(r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|\bsk-[A-Za-z0-9]{48}\b"),
        ("sk-",),
    ),
    _Pattern("anthropic_api_key", re.compile(r"\bsk-ant-[a-z]+[0-9]*-[A-Za-z0-9_\-]{32,}"), ("sk-ant-",)),
    _Pattern(
        "slack_token",
        re.compile(r"\bxapp-\d-[A-Za-z0-9\-]{20,}|\bxoxe(?:\.xox[bp])?-\d-[A-Za-z0-9]{40,}"),
        ("xapp-", "xoxe"),
    ),
    _Pattern(
        "stripe_access_key",
        re.compile(r"\b(?:sk|rk)_test_[0-9a-zA-Z]{24,}|\bwhsec_[A-Za-z0-9]{24,}"),
        ("k_test_", "whsec_"),
    ),
    _Pattern("npm_token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), ("npm_",)),
    _Pattern("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), ("AIza",)),
    _Pattern("google_oauth_client_secret", re.compile(r"\bGOCSPX-[A-Za-z0-9_\-]{28}"), ("GOCSPX-",)),
    _Pattern("google_oauth_token", re.compile(r"\bya29\.[0-9A-Za-z_\-]{30,}"), ("ya29.",)),
    _Pattern("azure_storage_key", re.compile(r"\bAccountKey=([A-Za-z0-9+/]{40,}={0,2})"), ("AccountKey=",)),
    _Pattern(
        "azure_shared_access_key",
        re.compile(r"\bSharedAccessKey=([A-Za-z0-9+/]{40,}={0,2})|[?&;]sig=([A-Za-z0-9%+/]{30,}={0,2})"),
        ("SharedAccessKey=", "sig="),
    ),
    _Pattern(
        "azure_client_secret", re.compile(r"(?<![\w~.\-])[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"), ("Q~",)
    ),
    _Pattern(
        "connection_string_password",
        re.compile(r"\b(?:password|pwd)\s*=\s*([^\s;'\"{}][^;'\"\n]*?)\s*(?=;|'|\"|$)", re.I | re.M),
        ("password", "pwd"),
        fold=True,
        context=_CONNECTION_STRING,
    ),
    _Pattern("basic_auth_credentials", re.compile(r"\b[a-z][a-z0-9+.\-]*://:([^@\s/'\"]+)@", re.I), ("://:",)),
)
"""Token formats detect-secrets has no (or too narrow a) detector for."""


def secret_kind(secret_type: str) -> str:
    """`AWS Access Key` -> `aws_access_key`."""
    kind = re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")
    return _KIND_NAMES.get(kind, kind)


@cache
def _detectors() -> list:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes = {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}
    return [classes[name]() for name in _PLUGIN_NAMES if name in classes]


def _token_end(text: str, end: int) -> int:
    """Extends a match to the end of the token it starts (some patterns, like JWT's, end lazily)."""
    tail = _TOKEN_TAIL.match(text, end)
    return end + len(tail.group(0).rstrip(".")) if tail else end


def _captured_secret_group(match: re.Match) -> int:
    """1 when the pattern captures the secret after some context (`://user:(password)@`, `aws_key = "(…)"`), else 0."""
    if (
        match.re.groups == 1
        and match.group(1)
        and match.start(1) > match.start(0)
        and match.end(0) - match.end(1) <= 1
    ):
        return 1
    return 0


def _long_token_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of the lines holding a run of at least 24 token characters, merged and in order."""
    lines: list[tuple[int, int]] = []
    for match in _LONG_TOKEN.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        end = len(text) if end < 0 else end
        if lines and start <= lines[-1][1]:
            lines[-1] = (lines[-1][0], max(end, lines[-1][1]))
        else:
            lines.append((start, end))
    return lines


@cache
def _lowered(literals: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(literal.lower() for literal in literals)


class _Text:
    """A file's text with its lower-case form and long-token lines computed once, on first need."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._folded: str | None = None
        self._long_token_lines: list[tuple[int, int]] | None = None

    def contains_any(self, literals: tuple[str, ...], fold: bool) -> bool:
        if not fold:
            return any(literal in self.text for literal in literals)
        if self._folded is None:
            self._folded = self.text.lower()
        return any(literal in self._folded for literal in _lowered(literals))

    def long_token_lines(self) -> list[tuple[int, int]]:
        if self._long_token_lines is None:
            self._long_token_lines = _long_token_lines(self.text)
        return self._long_token_lines


def _line_of(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start : len(text) if end < 0 else end]


def _own_spans(text: _Text) -> Iterator[tuple[int, int, str]]:
    for pattern in _OWN_PATTERNS:
        if not text.contains_any(pattern.literals, pattern.fold):
            continue
        for match in pattern.regex.finditer(text.text):
            if pattern.context and not pattern.context.search(_line_of(text.text, match.start())):
                continue
            group = next((i for i in range(1, pattern.regex.groups + 1) if match.group(i) is not None), 0)
            yield match.start(group), match.end(group), pattern.kind


def _detector_spans(text: _Text) -> Iterator[tuple[int, int, str]]:
    for detector in _detectors():
        name = type(detector).__name__
        kind = secret_kind(detector.secret_type)
        if name in _LITERALS and not text.contains_any(*_LITERALS[name]):
            continue
        regions = text.long_token_lines() if name in _LONG_TOKEN_DETECTORS else [(0, len(text.text))]
        for regex in detector.denylist:
            for start, end in regions:
                for match in regex.finditer(text.text, start, end):
                    if any(True for _ in detector.analyze_string(match.group(0))):
                        group = _captured_secret_group(match)
                        span_end = match.end(group) if group else _token_end(text.text, match.end())
                        yield match.start(group), span_end, kind


def _secret_spans(text: str) -> list[tuple[int, int, str]]:
    spans = (
        [(m.start(), m.end(), "private_key") for m in _PRIVATE_KEY_BLOCK.finditer(text)]
        if "PRIVATE KEY" in text
        else []
    )
    lazy = _Text(text)
    return spans + list(_detector_spans(lazy)) + list(_own_spans(lazy))


def redact_secrets(text: str) -> tuple[str, Counter[str]]:
    """Returns the text with every detected secret replaced by `<SECRET:kind>`, and the count per kind."""
    spans = sorted(_secret_spans(text), key=lambda span: (span[0], -span[1]))
    counts: Counter[str] = Counter()
    pieces, position = [], 0
    for start, end, kind in spans:
        if start < position:  # inside a span already redacted (e.g. a token inside a private key block)
            continue
        pieces += [text[position:start], f"<SECRET:{kind}>"]
        counts[kind] += 1
        position = end
    if not counts:
        return text, counts
    pieces.append(text[position:])
    return "".join(pieces), counts
