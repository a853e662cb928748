"""The API's settings: loopback unless allowed, the token from the environment or a 0600
file only (never the config file), never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fsmtrader.config import load_settings
from fsmtrader.control.token import api_token, require_token
from fsmtrader.errors import ConfigError, FsmTraderError

TOKEN = "t0ken-for-tests-0123456789"


def write(tmp: Path, text: str) -> Path:
    p = tmp / "c.toml"
    p.write_text(text)
    return p


def test_the_token_comes_from_the_environment_and_is_never_printed(tmp_path: Path) -> None:
    s = load_settings(None, env={"FSMTRADER_API__TOKEN": TOKEN})
    assert api_token(s) == TOKEN
    assert TOKEN not in repr(s) and TOKEN not in str(s.redacted_dict())
    assert s.redacted_dict()["api"]["token"] == "***"


def test_the_token_from_a_0600_file_only(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    f.chmod(0o644)
    s = load_settings(write(tmp_path, f'[api]\ntoken_file = "{f}"\n'), env={})
    with pytest.raises(ConfigError, match=r"api.token_file: .* mode 0644.*chmod 600") as e:
        api_token(s)
    assert TOKEN not in str(e.value)
    f.chmod(0o600)
    assert api_token(s) == TOKEN
    os.unlink(f)
    with pytest.raises(ConfigError, match=r"api.token_file: .* not found"):
        api_token(s)


def test_no_token_or_a_short_one_is_refused_in_one_line() -> None:
    with pytest.raises(
        ConfigError, match=r"api.enabled: the API needs a token; set FSMTRADER_API__TOKEN"
    ):
        require_token(load_settings(None, env={}))
    with pytest.raises(ConfigError, match="at least 16 characters") as e:
        api_token(load_settings(None, env={"FSMTRADER_API__TOKEN": "short"}))
    assert "short" not in str(e.value)


def test_a_token_in_the_config_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    with pytest.raises(FsmTraderError) as e:
        load_settings(write(tmp_path, f'[api]\ntoken = "{TOKEN}"\n'), env={})
    assert "api.token" in str(e.value) and "never read from the config file" in str(e.value)
    assert TOKEN not in str(e.value)


def test_only_loopback_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(
        FsmTraderError, match=r"api.host \(from .*\): must be 127.0.0.1, ::1 or localhost"
    ):
        load_settings(write(tmp_path, '[api]\nhost = "0.0.0.0"\n'), env={})
    s = load_settings(write(tmp_path, '[api]\nhost = "0.0.0.0"\nallow_remote = true\n'), env={})
    assert s.api.host == "0.0.0.0" and s.api.enabled is False and s.api.port == 8080
