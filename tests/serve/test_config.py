"""`pcopilot serve` settings: flags, the several-values flag, validation."""

from __future__ import annotations

import pytest

from personal_copilot.cli import parse_config
from personal_copilot.serve import ServeConfig


def test_adapters_flag_takes_several_values_and_the_list_syntax() -> None:
    several = parse_config("serve", ["--model", "m", "--adapters", "a=x", "b=y/z", "--port", "9000"])
    listed = parse_config("serve", ["--model", "m", "--adapters", "[a=x, b=y/z]"])
    assert several.adapters == listed.adapters == ["a=x", "b=y/z"]
    assert parse_config("serve", ["--model", "m", "--adapters=a=x"]).adapters == ["a=x"]
    assert several.adapter_paths() == {"a": "x", "b": "y/z"} and several.port == 9000


def test_defaults_bind_loopback() -> None:
    config = parse_config("serve", ["--model", "m"])
    assert (config.host, config.port, config.api_key, config.adapters) == ("127.0.0.1", 8080, None, [])


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"adapters": ["a"]}, "--adapters"),
        ({"port": 70000}, "--port"),
        ({"max_batch_size": 0}, "--max_batch_size"),
        ({"max_new_tokens": 0}, "--max_new_tokens"),
        ({"batch_window_ms": -1}, "--batch_window_ms"),
        ({"max_rows_per_request": 0}, "--max_rows_per_request"),
        ({"engine": "gpu-box:8000"}, "--engine"),
        ({"engine_models": ["a=b"]}, "--engine"),
        ({"engine": "http://gpu-box:8000", "engine_models": ["a"]}, "--engine_models"),
        ({"engine": "http://gpu-box:8000", "engine_timeout": 0}, "--engine_timeout"),
    ],
)
def test_invalid_values_name_the_flag(overrides: dict, flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        ServeConfig(model="m", **overrides)


def test_a_taken_port_is_a_user_error_before_the_model_loads() -> None:
    from personal_copilot.errors import PcopilotError
    from personal_copilot.serve.run import bind_socket, is_loopback

    taken = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(PcopilotError, match="choose another --port"):
            bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


def test_engine_models_flag() -> None:
    config = parse_config("serve", ["--model", "m", "--engine", "http://e:8000", "--engine_models", "a=x", "c=y"])
    assert config.engine_model_names() == {"a": "x", "c": "y"} and config.engine_timeout == 60.0
