"""Dot-stuffing the DATA stream (RFC 5321 4.5.2), and undoing it for the capture mailer."""

from __future__ import annotations

__all__ = ["dot_stuff"]


def dot_stuff(data: bytes) -> bytes:
    """Escape leading dots and terminate the DATA stream (bytes.replace is C, no regex)."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def _unstuff(wire: bytes) -> bytes:
    """Undo dot_stuff: the message as a reader's client would store it."""
    body = wire.removesuffix(b".\r\n")
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")
