"""Lease reaping: renew the leases in hand, end those that ran out or whose worker died.

Moved from worker.py as it was (issue 18, item 4). A row whose lease ends goes back to the
queue, unless it was handed over (then `unknown`: it may have reached the relay).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta

from app.config import Settings
from app.db import OnThread
from app.models import utcnow
from app.sends.store import lease

log = logging.getLogger("morningpost.delivery")

# How often a worker looks for dead workers' leases on its own host (one indexed query).
REAP_EVERY_SECONDS = 5.0


def owner_alive(owner: str) -> bool:
    """Tell whether the process behind a lease owner on this host still runs."""
    try:
        pid = int(owner.split(":")[1])
    except (IndexError, ValueError):
        return True  # not ours to judge: its lease will run out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


class Reaper:
    """Keep this worker's leases alive and end the leases nobody keeps."""

    def __init__(self, settings: Settings, owner: str, db: OnThread) -> None:
        self.settings = settings
        self.owner = owner
        self.db = db
        self._next_reap = 0.0  # monotonic time of the next look for dead neighbours' leases

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows in hand, and expire those of workers that died."""
        s = self.settings
        renewed = await self.db(
            lambda ses: lease.renew_leases(ses, self.owner, ids, utcnow(), s.lease_seconds)
        )
        await self.expire()
        log.debug("renewed %d leases", renewed)

    async def expire(self) -> None:
        """End leases that ran out, and at once those of dead workers on this host."""
        expired = await self.db(lambda s: lease.expire_leases(s, utcnow()))
        if time.monotonic() >= self._next_reap:
            self._next_reap = time.monotonic() + REAP_EVERY_SECONDS
            host = self.owner.split(":", 1)[0] + ":"
            # Not renewed for three renewal periods: a live worker renews every few seconds.
            stale = timedelta(
                seconds=self.settings.lease_seconds
                - 3 * lease.renew_interval(self.settings.lease_seconds)
            )
            owners = await self.db(lambda s: lease.lease_owners(s, host, utcnow() + stale))
            dead = [o for o in owners if o != self.owner and not owner_alive(o)]
            if dead:
                reaped = await self.db(lambda s: lease.expire_leases(s, utcnow(), dead))
                log.warning(
                    "worker(s) %s on this host are gone: %d of their rows back in the queue, "
                    "%d unknown (they were on the wire)",
                    ", ".join(dead),
                    reaped.requeued,
                    reaped.unknown,
                )
        if expired:
            log.warning(
                "leases ran out: %d rows back in the queue, %d unknown (they were on the wire)",
                expired.requeued,
                expired.unknown,
            )
