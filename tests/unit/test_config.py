"""Configuration: defaults work bare, bad values stop start-up with one line naming the variable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, ensure_secret_keys, load_settings
from app.sends.dkim import generate_key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MORNINGPOST_SMTP_URL", "ftp://relay.example.org"),
        ("MORNINGPOST_SMTP_URL", "smtp://relay.example.org:99999"),
        ("MORNINGPOST_DATABASE_URL", "mysql://db/x"),
        ("MORNINGPOST_SECRET_KEYS", "one,,two"),
        ("MORNINGPOST_BASE_URL", "not a url"),
        ("MORNINGPOST_FROM", "no address here"),
        ("MORNINGPOST_BATCH_SIZE", "lots"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith(name + ":")
    assert "\n" not in message


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./var/morningpost.db"
    assert settings.smtp_url is None  # the capture mailer
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.sender.domain.endswith(".example")


@pytest.mark.parametrize("value", ["100", "0", "lots"])
def test_the_dead_flush_every_setting_still_loads_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    """An old .env with FLUSH_EVERY (issue 18): any value starts, and the log says it is unused."""
    monkeypatch.setenv("MORNINGPOST_FLUSH_EVERY", value)
    with caplog.at_level(logging.WARNING, logger="morningpost"):
        load_settings()
    assert "MORNINGPOST_FLUSH_EVERY is no longer used" in caplog.text


def test_no_flush_every_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="morningpost"):
        load_settings()
    assert "FLUSH_EVERY" not in caplog.text


def test_secret_key_generated_once_and_reused(tmp_path: Path) -> None:
    first = ensure_secret_keys(Settings(var_dir=tmp_path))
    second = ensure_secret_keys(Settings(var_dir=tmp_path))
    assert first == second and len(first[0]) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_keys_newest_last_and_postgres_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORNINGPOST_SECRET_KEYS", "old, new")
    monkeypatch.setenv("MORNINGPOST_DATABASE_URL", "postgresql://u@127.0.0.1/db")
    settings = load_settings()
    assert settings.secret_keys == ["old", "new"]
    assert settings.database_url.startswith("postgresql+psycopg://")


def test_dkim_domain_must_align_with_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "dkim.pem"
    generate_key(key, "mp", "other.example")
    monkeypatch.setenv("MORNINGPOST_FROM", "News <news@mail.morningpost.test>")
    monkeypatch.setenv("MORNINGPOST_DKIM_SELECTOR", "mp")
    monkeypatch.setenv("MORNINGPOST_DKIM_PRIVATE_KEY_PATH", str(key))
    monkeypatch.setenv("MORNINGPOST_DKIM_DOMAIN", "other.example")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith("MORNINGPOST_DKIM_DOMAIN:")
    monkeypatch.setenv("MORNINGPOST_DKIM_DOMAIN", "morningpost.test")  # a parent: aligned
    assert load_settings().dkim_enabled


def test_several_bad_values_name_the_first_in_the_readme_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The field groups keep one order (app.config.settings): the database before the rest."""
    monkeypatch.setenv("MORNINGPOST_MEDIA_URL", "http://not-s3")
    monkeypatch.setenv("MORNINGPOST_DEFAULT_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("MORNINGPOST_BATCH_SIZE", "lots")
    monkeypatch.setenv("MORNINGPOST_DATABASE_URL", "mysql://db/x")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith("MORNINGPOST_DATABASE_URL:")
    monkeypatch.delenv("MORNINGPOST_DATABASE_URL")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith("MORNINGPOST_BATCH_SIZE:")
