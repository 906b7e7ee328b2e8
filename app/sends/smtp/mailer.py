"""Mailers: make_mailer, the factory, and every name the send core imports from here.

The mailers live in modules that say what they hold: the result of a send and how a refusal is
classified (results), the protocols and the HandOver gate (protocols), one relay session's
SMTP transactions (transaction), the connections to one relay (pool), dot-stuffing (stuffing),
and the capture mailer that writes .eml files (capture).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from app.config import Settings
from app.sends.smtp.capture import CaptureMailer
from app.sends.smtp.pool import SMTPMailer
from app.sends.smtp.protocols import HandOver, Mailer, MailerConnection
from app.sends.smtp.results import Outcome, SendResult
from app.sends.smtp.stuffing import _unstuff, dot_stuff

if TYPE_CHECKING:  # relays.py imports the mailers: the type only, for the factory
    from app.sends.smtp.relays import RelayObserver

__all__ = [
    "CaptureMailer",
    "HandOver",
    "Mailer",
    "MailerConnection",
    "Outcome",
    "SMTPMailer",
    "SendResult",
    "_unstuff",
    "dot_stuff",
    "make_mailer",
]


def make_mailer(
    settings: Settings, engine: Engine | None = None, observer: RelayObserver | None = None
) -> Mailer:
    """Return the relay pool for settings.smtp_url, or the capture mailer when it is unset.

    The pool keeps its counts in the database: `engine`, or one of its own on DATABASE_URL.
    """
    # Imported when called, as before the split: relays.py builds on the mailers' modules.
    from app.sends.smtp.relays import RelayPool

    if settings.smtp_url:
        return RelayPool(
            settings.relays,
            timeout=settings.smtp_timeout_seconds,
            max_idle=settings.smtp_connections,
            rest_seconds=settings.relay_rest_seconds,
            engine=engine,
            database_url=settings.database_url,
            observer=observer,
        )
    return CaptureMailer(settings.outbox_dir)
