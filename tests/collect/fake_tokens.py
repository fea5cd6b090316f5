"""Realistic FAKE tokens of the services a code team uses, in the lines of code and config they are found in.

The tokens are generated (seeded) in each service's documented format, so that no real-looking secret is written
in this repository. `FAKE_TOKENS[kind]` lists (line, token) pairs; redaction must remove every token, and report it
under `kind`. The benchmark prints the recall per kind from the same fixture.
"""

from __future__ import annotations

import base64
import json
import random
import string

_RNG = random.Random(15)
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
BASE64 = ALNUM + "+/"
HEX = "0123456789abcdef"
DIGITS = string.digits
UPPER = string.ascii_uppercase


def _draw(length: int, alphabet: str = ALNUM) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(length))


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _jwt() -> str:
    header = _b64url({"alg": "HS256", "typ": "JWT"})
    payload = _b64url({"sub": _draw(10, string.digits), "name": "Jane Doe", "iat": 1516239022})
    return f"{header}.{payload}.{_draw(43, URLSAFE)}"


def _pairs(template: str, tokens: list[str]) -> list[tuple[str, str]]:
    return [(template.format(token=token), token) for token in tokens]


FAKE_TOKENS: dict[str, list[tuple[str, str]]] = {
    "huggingface_token": _pairs('HF_TOKEN = "{token}"', ["hf_" + _draw(34, string.ascii_letters) for _ in range(3)])
    + _pairs("login(token='{token}')", ["api_org_" + _draw(34, string.ascii_letters)]),
    "openai_token": _pairs(
        'client = OpenAI(api_key="{token}")',
        [
            "sk-proj-" + _draw(156, URLSAFE),
            "sk-proj-" + _draw(48, URLSAFE),
            "sk-" + _draw(20) + "T3BlbkFJ" + _draw(20),
            "sk-svcacct-" + _draw(74, URLSAFE),
            "sk-" + _draw(48),
        ],
    ),
    "anthropic_api_key": _pairs(
        "ANTHROPIC_API_KEY={token}",
        ["sk-ant-api03-" + _draw(93, URLSAFE) + "AA", "sk-ant-admin01-" + _draw(93) + "AA"],
    ),
    "slack_token": _pairs(
        'SLACK_BOT_TOKEN: "{token}"',
        [
            f"xoxb-{_draw(12, DIGITS)}-{_draw(13, DIGITS)}-{_draw(24, string.ascii_lowercase)}",
            f"xoxp-{_draw(12, DIGITS)}-{_draw(12, DIGITS)}-{_draw(13, DIGITS)}-{_draw(32, HEX)}",
            f"xapp-1-A{_draw(10, UPPER + DIGITS)}-{_draw(13, DIGITS)}-{_draw(64, HEX)}",
        ],
    )
    + _pairs(
        "webhook = '{token}'",
        [f"https://hooks.slack.com/services/T{_draw(8, UPPER)}/B{_draw(10, UPPER)}/{_draw(24)}"],
    ),
    "stripe_access_key": _pairs(
        "stripe.api_key = '{token}'",
        [
            "sk_live_" + _draw(24),
            "sk_live_" + _draw(99),
            "rk_live_" + _draw(24),
            "sk_test_" + _draw(99),
            "whsec_" + _draw(32),
        ],
    ),
    "npm_token": _pairs("NPM_TOKEN={token}", ["npm_" + _draw(36)])
    + _pairs("//registry.npmjs.org/:_authToken={token}", ["npm_" + _draw(36)]),
    "pypi_token": _pairs("password = {token}", ["pypi-AgEIcHlwaS5vcmc" + _draw(140, URLSAFE)]),
    "gitlab_token": _pairs(
        "GITLAB_TOKEN = '{token}'", ["glpat-" + _draw(20, URLSAFE), "glrt-" + _draw(20, URLSAFE), "gldt-" + _draw(20)]
    ),
    "github_token": _pairs("token = '{token}'", ["ghp_" + _draw(36), "gho_" + _draw(36), "ghs_" + _draw(36)]),
    "google_api_key": _pairs(
        'const firebaseConfig = {{ apiKey: "{token}" }};', ["AIza" + _draw(35, URLSAFE) for _ in range(2)]
    ),
    "google_oauth_client_secret": _pairs('"client_secret": "{token}",', ["GOCSPX-" + _draw(28, URLSAFE)]),
    "google_oauth_token": _pairs("headers = {{'Authorization': 'Bearer {token}'}}", ["ya29." + _draw(150, URLSAFE)]),
    "azure_storage_key": _pairs(
        'conn = "DefaultEndpointsProtocol=https;AccountName=team;AccountKey={token};EndpointSuffix=core.windows.net"',
        [_draw(86, BASE64) + "=="],
    ),
    "azure_shared_access_key": _pairs(
        'SB = "Endpoint=sb://team.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={token}"',
        [_draw(43, BASE64) + "="],
    )
    + _pairs(
        "url = 'https://teamstore.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01&sig={token}'",
        [_draw(44, ALNUM) + "%3D"],
    ),
    "azure_client_secret": _pairs(
        'AZURE_CLIENT_SECRET = "{token}"', [_draw(3, URLSAFE) + "8Q~" + _draw(34, URLSAFE + "~.")]
    ),
    "aws_access_key": _pairs("aws_access_key_id = {token}", ["AKIA" + _draw(16, string.ascii_uppercase + "234567")])
    + _pairs('aws_secret_access_key = "{token}"', [_draw(40, BASE64)]),
    "json_web_token": _pairs('Authorization: "Bearer {token}"', [_jwt(), _jwt()]),
    "basic_auth_credentials": [
        (f'DATABASE_URL = "postgresql://app:{pw}@db.internal:5432/app"', pw) for pw in (_draw(16), _draw(24))
    ]
    + [(f"MONGO = 'mongodb+srv://svc:{pw}@cluster0.abcde.mongodb.net/prod'", pw) for pw in (_draw(20),)]
    + [(f"REDIS_URL = 'redis://:{pw}@cache.internal:6379/0'", pw) for pw in (_draw(32),)],
    "connection_string_password": [
        (
            f'conn = "Server=tcp:team.database.windows.net,1433;Database=app;User ID=svc;Password={pw};Encrypt=True;"',
            pw,
        )
        for pw in (_draw(18),)
    ]
    + [(f"DSN = 'Driver={{ODBC Driver 18}};Server=db;Uid=app;Pwd={pw}'", pw) for pw in (_draw(14),)]
    + [(f'"ConnectionStrings": {{"Main": "Host=db;Username=app;Password={pw}"}}', pw) for pw in (_draw(22),)],
}

HARMLESS_LINES = [
    "from sklearn.linear_model import LinearRegression  # sk-learn",
    "path = hf_hub_download(repo_id='org/model', filename='config.json')",
    "def login(password):\n    if password == get_password():\n        return True",
    'conn = "Server=localhost;Database=app;Trusted_Connection=True;"',
    "task_id = 'task-1234-abcd'  # ticket",
    "API_URL = 'https://api.example.com/v1/items?sort=asc&page=2'",
    "const npm_script = 'npm_config_cache';",
    "password = os.environ['DB_PASSWORD']",
]
"""Code that looks a little like a secret but is not: it must be left as it is."""
