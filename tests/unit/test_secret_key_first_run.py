"""The signing key generated on a first run: two processes starting together (serve and a
worker, from one compose file) must end up signing with one key, the one on disk."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

from app.config import Settings, ensure_secret_keys, startup


def test_two_first_runs_at_once_sign_with_the_one_saved_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real = secrets.token_urlsafe

    def slow_key(n: int) -> str:
        # Widen the window between "no key file yet" and saving one, as a busy host would.
        key = real(n)
        made.append(key)
        time.sleep(0.3)
        return key

    monkeypatch.setattr(startup.secrets, "token_urlsafe", slow_key)
    got: dict[int, list[str]] = {}

    def first_run(n: int) -> None:
        got[n] = ensure_secret_keys(Settings(var_dir=tmp_path))

    threads = [threading.Thread(target=first_run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)  # the second starts while the first is still making its key
    for thread in threads:
        thread.join()

    assert len(made) == 2  # both found no key and made one: the race happened
    on_disk = (tmp_path / "secret_key").read_text().strip()
    assert got[0] == got[1] == [on_disk]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary file left


def test_an_empty_key_file_is_replaced_by_a_new_key(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("\n")
    (key,) = ensure_secret_keys(Settings(var_dir=tmp_path))
    assert len(key) > 40
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
