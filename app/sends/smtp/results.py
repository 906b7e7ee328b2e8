"""What became of one send (SendResult), and how an SMTP refusal is classified."""

from __future__ import annotations

from typing import NamedTuple

from app.sends.policy import Outcome, is_hard_bounce

__all__ = ["Outcome", "SendResult"]


class SendResult(NamedTuple):
    """The outcome of one send, the reply that decided it, and whether to suppress the address."""

    # A NamedTuple, not a frozen dataclass: one per message, and a frozen dataclass's
    # __init__ sets each of its six fields through object.__setattr__.
    outcome: Outcome
    reply: str
    suppress: bool = False
    # Set when the relay itself is unusable (refused, no STARTTLS, login or TLS refused,
    # silent): a sentence an editor can act on. Such failures are never the reader's.
    alert: str | None = None
    # The row was never handed over (its gate said no): no content left, give it back uncounted.
    withheld: bool = False
    # No byte of the content left (connect, MAIL, RCPT or DATA refused or broken): another
    # relay may take the message without any risk of a second copy.
    before_data: bool = False


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def _by_code(code: int, message: str, *, may_suppress: bool) -> SendResult:
    """Classify a refusal that happened before or at the final reply (nothing ambiguous)."""
    reply = _reply(code, message)
    if 400 <= code < 500:
        return SendResult(Outcome.retry, reply)
    if 500 <= code < 600:
        return SendResult(Outcome.failed, reply, may_suppress and is_hard_bounce(message))
    return SendResult(Outcome.retry, f"unexpected reply {reply}")


_WITHHELD = SendResult(
    Outcome.retry, "not sent: the row was not handed over", withheld=True, before_data=True
)
