"""An A/B test's pauses: mirrored onto its carriers, raised by a carrier, and timed.

Pausing, resuming or cancelling the test's issue reaches its carriers (the scheduler calls
mirror_status every round); a carrier the worker pauses itself (errors, a bounce burst, a
relay alert) pauses the whole test with its reason; and a paused test's decision waits, moved
on by the pause's length when it resumes.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.automations.abtests import set_issue
from app.errors import Conflict
from app.issues.service import pause_issue, resume_issue
from app.models import AbTest, Issue, IssueStatus
from app.sends.store.sends import cancel_send

# Why a variant waits when its test is paused. Unlike the worker's reasons it never begins
# like a relay pause or a burst's, so neither the relay pool nor a resume acts on it alone.
HELD_REASON = "paused with its A/B test"


def mirror_status(session: Session, now: datetime) -> None:
    """Keep each test and its carriers paused, resumed or cancelled together.

    A carrier the worker paused (too many errors, a bounce burst, a relay alert) keeps its
    reason and pauses the test with it, so the editor sees why and decides when to go on.
    `held_open` on a paused carrier says the test holds it: the editor's resume of the test
    leaves no other trace, and that carrier must then resume, not pause the test again.
    """
    rows = session.execute(
        select(AbTest.issue_id, AbTest.subjects, AbTest.carriers, Issue.status)
        .join(Issue, Issue.id == AbTest.issue_id)
        .where(Issue.status.in_((IssueStatus.paused, IssueStatus.cancelled, IssueStatus.sending)))
    ).all()
    for issue_id, subjects, carriers, status in rows:
        states = list(
            session.execute(
                select(Issue.id, Issue.status, Issue.held_open, Issue.pause_reason).where(
                    Issue.id.in_(carriers)
                )
            )
        )
        # Carriers paused on their own first, so the others follow the test's pause at once.
        states.sort(key=lambda r: (r.held_open or r.status != IssueStatus.paused, r.id))
        for carrier_id, current, held, reason in states:
            if status == IssueStatus.cancelled:
                if current in (IssueStatus.sending, IssueStatus.paused):
                    cancel_send(session, carrier_id, now, (IssueStatus.sending, IssueStatus.paused))
                    set_issue(session, carrier_id, held_open=False)
            elif current == IssueStatus.paused and not held:
                set_issue(session, carrier_id, held_open=True)
                if status == IssueStatus.sending:
                    subject = subjects[carriers.index(carrier_id)]
                    status = _pause_test(session, issue_id, carrier_id, subject, reason, now)
            elif current == IssueStatus.sending and status == IssueStatus.paused:
                set_issue(
                    session,
                    carrier_id,
                    status=IssueStatus.paused,
                    pause_reason=HELD_REASON,
                    held_open=True,
                )
            elif current == IssueStatus.sending and held:
                set_issue(session, carrier_id, held_open=False)  # resumed by the relay pool
            elif current == IssueStatus.paused and status == IssueStatus.sending:
                # The editor resumed the test. The carrier's own resume: after a relay burst
                # its late 5.1.x failures are queued again and their suppressions lifted.
                set_issue(session, carrier_id, held_open=False)
                with contextlib.suppress(Conflict):  # another automations loop was first
                    resume_issue(session, carrier_id, now)
        if status == IssueStatus.cancelled:
            # A cancelled test is never decided: nothing more goes out.
            session.execute(
                update(AbTest)
                .where(AbTest.issue_id == issue_id, AbTest.winner.is_(None))
                .values(decided_at=now, winner=-1)
                .execution_options(synchronize_session=False)
            )
        else:
            _clock_pause(session, issue_id, status, now)


def _clock_pause(session: Session, issue_id: int, status: str, now: datetime) -> None:
    """Note when an undecided test was paused; on its resume, move its decision on as long.

    The sample's readers cannot click what the pause kept from them: a decision that fell due
    meanwhile would pick a winner from a part of the sample, or none (a tie: the first).
    """
    test = session.execute(
        select(AbTest.paused_at, AbTest.decide_at).where(
            AbTest.issue_id == issue_id, AbTest.winner.is_(None)
        )
    ).first()
    if test is None:
        return  # decided already: nothing waits for the clock
    if status == IssueStatus.paused and test.paused_at is None:
        _clock(session, issue_id, None, paused_at=now)
    elif status == IssueStatus.sending and test.paused_at is not None:
        later = test.decide_at + max(now - test.paused_at, timedelta(0))
        _clock(session, issue_id, test.paused_at, paused_at=None, decide_at=later)


def _clock(session: Session, issue_id: int, since: datetime | None, **values: Any) -> None:
    # Compare-and-set on paused_at: two automation loops move a decision on once.
    was = AbTest.paused_at.is_(None) if since is None else AbTest.paused_at == since
    session.execute(
        update(AbTest)
        .where(AbTest.issue_id == issue_id, was)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _pause_test(
    session: Session, issue_id: int, carrier_id: int, subject: str, why: str | None, now: datetime
) -> str:
    """Pause a sending test because one of its carriers paused; return the test's status."""
    label = subject if len(subject) <= 60 else subject[:59] + "…"
    # Never the carrier's reason alone: after a burst's, resuming the test would lift the
    # test's own real hard bounces; after a relay pool's, the pool would resume it unasked.
    reason = f"variant {label!r} {why or 'paused'}"
    try:
        pause_issue(session, issue_id, now, reason)
    except Conflict:  # an editor paused or cancelled it meanwhile
        return session.scalar(select(Issue.status).where(Issue.id == issue_id)) or ""
    return IssueStatus.paused
