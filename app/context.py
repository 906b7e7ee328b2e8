"""The long-lived objects one process builds from its settings (engine, tokens, renderer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.config.startup import ensure_secret_keys
from app.db import make_engine, make_read_sessionmaker, make_sessionmaker
from app.issues.linkcheck import LinkChecker
from app.media.store import MediaStore, make_store
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
    _media: MediaStore | None = field(default=None, repr=False)
    _links: LinkChecker | None = field(default=None, repr=False)

    @property
    def renderer(self) -> Renderer:
        """Return the renderer, built on first use (it loads templates and draws the QR code)."""
        if self._renderer is None:
            self._renderer = Renderer(self.settings)
        return self._renderer

    @property
    def media(self) -> MediaStore:
        """Return where uploaded images live (VAR_DIR/media, or the MEDIA_URL bucket)."""
        if self._media is None:
            self._media = make_store(self.settings.var_dir, self.settings.media_url)
        return self._media

    @property
    def links(self) -> LinkChecker:
        """Return the preflight's link checker (one per process: its cache is shared)."""
        if self._links is None:
            s = self.settings
            self._links = LinkChecker(
                timeout=s.link_check_timeout_seconds,
                concurrency=s.link_check_concurrency,
                cache_seconds=s.link_check_cache_seconds,
                allow_private=s.link_check_allow_private,
            )
        return self._links

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
