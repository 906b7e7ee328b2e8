"""The long-lived objects one process builds from its settings (engine, tokens, renderer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, ensure_secret_keys
from app.db import make_engine, make_read_sessionmaker, make_sessionmaker
from app.rendering.compile import Renderer
from app.tokens import TokenService


@dataclass
class Context:
    """What a web app, a worker or a CLI command needs; built once per process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    tokens: TokenService
    # Sessions that only read: on SQLite they take no write lock (app.db.make_read_sessionmaker).
    reads: sessionmaker[Session]
    _renderer: Renderer | None = field(default=None, repr=False)

    @property
    def renderer(self) -> Renderer:
        """Return the renderer, built on first use (it loads templates and draws the QR code)."""
        if self._renderer is None:
            self._renderer = Renderer(self.settings)
        return self._renderer

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()


def build_context(settings: Settings, engine: Engine | None = None) -> Context:
    """Build the process context; an engine may be passed in (tests share one)."""
    engine = engine or make_engine(settings.database_url, concurrency=settings.web_concurrency)
    keys = ensure_secret_keys(settings)
    return Context(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        reads=make_read_sessionmaker(engine),
        tokens=TokenService(keys, settings.confirm_token_max_age_seconds),
    )
