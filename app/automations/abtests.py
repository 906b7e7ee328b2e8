"""Subject A/B tests on the ledger: a random sample gets one subject each, the rest the best.

Each subject has a hidden carrier issue (a copy of the issue with that subject, its content
frozen) and the sample's rows are that carrier's, so every click names its variant (click
tokens name the issue they were rendered for) and the send core never learns that a test
exists. The issue itself is started `held_open` with no rows: when the decision falls due (or
an editor decides), the winner's subject becomes its frozen subject and the rest of the list
is frozen onto it in the same transaction, leaving out everyone who had a variant, so each
reader gets exactly one copy. Pausing, resuming or cancelling the issue is mirrored onto the
carriers by the scheduler (ab_pauses.py); a carrier the worker pauses (errors, a bounce burst,
a relay alert) pauses the whole test with its reason, until an editor resumes the issue.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from app.audience.segments import send_audience
from app.automations.durations import parse_duration
from app.errors import Conflict, InvalidInput, NotFound
from app.issues.schemas import SendIn
from app.issues.service import local_moments, pre_send_check
from app.models import (
    AbTest,
    Click,
    Delivery,
    DeliveryStatus,
    FrozenIssue,
    Issue,
    IssueStatus,
    Subscriber,
)
from app.rendering.compile import Renderer
from app.sends.store.frozen import freeze_content
from app.sends.store.ledger import freeze_recipients, send_recipients

MAX_SUBJECTS = 4
SAMPLE_CHUNK = 500


def parse_ab(raw: Any) -> tuple[list[str], int, str, str]:
    """Check an `ab` request: (subjects, sample_percent, decide_after, metric)."""
    if not isinstance(raw, dict):
        raise InvalidInput('ab is {"subjects": [...], "sample_percent", "decide_after", "metric"}.')
    unknown = set(raw) - {"subjects", "sample_percent", "decide_after", "metric"}
    if unknown:
        raise InvalidInput(f"ab has no field {sorted(unknown)[0]!r}.")
    subjects = raw.get("subjects")
    if (
        not isinstance(subjects, list)
        or not 2 <= len(subjects) <= MAX_SUBJECTS
        or not all(isinstance(s, str) and s.strip() and len(s) <= 250 for s in subjects)
    ):
        raise InvalidInput(f"ab.subjects is a list of 2 to {MAX_SUBJECTS} subjects (1-250 chars).")
    if any("\r" in s or "\n" in s for s in subjects):
        raise InvalidInput("A subject is one line.")
    if len({s.strip() for s in subjects}) != len(subjects):
        raise InvalidInput("ab.subjects must differ from each other.")
    percent = raw.get("sample_percent", 20)
    if not isinstance(percent, int) or isinstance(percent, bool) or not 1 <= percent <= 100:
        raise InvalidInput("ab.sample_percent is a whole number from 1 to 100.")
    after = raw.get("decide_after", "PT2H")
    if not isinstance(after, str):
        raise InvalidInput("ab.decide_after is an ISO 8601 duration such as PT2H.")
    parse_duration(after)
    metric = raw.get("metric", "clicks")
    if metric != "clicks":
        raise InvalidInput('ab.metric is "clicks" (unique clicks per delivered message).')
    return [s.strip() for s in subjects], percent, after.strip().upper(), metric


def start_ab(
    session: Session,
    issue_id: int,
    raw: Any,
    now: datetime,
    renderer: Renderer,
    *,
    when: SendIn | None = None,
) -> dict[str, Any]:
    """Start an A/B send of a draft: the sample now, the rest once the decision is made.

    `when` is the send's input (SendIn, as for any send). With `send_at` (later than now) the
    sample goes out then; with `local_time` and `date` each sample reader gets their variant
    at HH:MM on that day in their own zone, and the rest the winner at the same local moment
    (at once where it has passed by the decision). Either way the decision is due
    `decide_after` after the sample's first copy is due. The text is the one checked and
    frozen now.
    """
    send_at = when.send_at if when is not None else None
    local = (
        (when.local_time, when.date)
        if when is not None and when.local_time is not None and when.date is not None
        else None
    )
    subjects, percent, after, metric = parse_ab(raw)
    issue = session.get(Issue, issue_id)
    if issue is None or issue.automation is not None:
        raise NotFound(f"No issue {issue_id}.")
    if issue.status != IssueStatus.draft:
        raise Conflict(f"Issue {issue_id} is already {issue.status}; it is never sent twice.")
    # The pre-send check, on the version the start below compare-and-sets on.
    errors = [f.message for f in pre_send_check(renderer, issue) if f.level == "error"]
    if errors:
        raise InvalidInput("The issue cannot be sent: " + " ".join(errors))
    later = send_at if local is None and send_at is not None and send_at > now else None
    moments = (
        local_moments(session, local[0], local[1], renderer.settings.default_timezone)
        if local is not None
        else None
    )
    # The same compare-and-set as any start: of two starts, or a start and an edit, one wins.
    # A later sample leaves the issue `scheduled` (held open: its start adds no rows) until
    # then; the worker starts it like any scheduled issue.
    waits = later is not None or local is not None
    flipped = session.execute(
        update(Issue)
        .where(
            Issue.id == issue_id,
            Issue.status == IssueStatus.draft,
            Issue.version == issue.version,
        )
        .values(
            status=IssueStatus.scheduled if waits else IssueStatus.sending,
            started_at=None if waits else now,
            held_open=True,
            pause_reason=None,
            send_at=later,
            local_time=local[0].strftime("%H:%M") if local else None,
            local_date=local[1].isoformat() if local else None,
        )
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    if flipped is None:
        raise Conflict(f"Issue {issue_id} changed while its send was being started; look again.")
    # Frozen now, also for a later sample: the variants and the rest send this checked text.
    freeze_content(session, issue_id, now)
    carriers = [_carrier(session, issue, subject, n, now) for n, subject in enumerate(subjects)]
    # The issue's own audience: its newsletter's readers (and its segment, if it has one).
    audience = send_audience(issue.audience_filter, now, issue.newsletter_id)
    reach = send_recipients(now, audience)  # who the freeze below would take
    eligible = session.scalar(select(func.count()).where(reach)) or 0
    size = max(len(subjects), round(eligible * percent / 100)) if eligible else 0
    # A random sample: the database shuffles (random() on both SQLite and PostgreSQL).
    sample = list(
        session.scalars(select(Subscriber.id).where(reach).order_by(func.random()).limit(size))
    )
    counts = []
    for n, carrier_id in enumerate(carriers):
        ids = sample[n :: len(carriers)]  # split evenly
        count = 0
        for start in range(0, len(ids), SAMPLE_CHUNK):
            chunk = ids[start : start + SAMPLE_CHUNK]
            count += freeze_recipients(
                session, carrier_id, moments, audience=Subscriber.id.in_(chunk)
            )
        counts.append(count)
        set_issue(session, carrier_id, recipients=count)
        if later is not None:
            # The sample's rows wait for send_at (the claim honours next_attempt_at).
            session.execute(
                update(Delivery)
                .where(Delivery.issue_id == carrier_id)
                .values(next_attempt_at=later)
                .execution_options(synchronize_session=False)
            )
    first = _first_due(session, carriers, now) if waits else now
    if waits and first <= now:
        waits = False  # every sample moment has passed: it goes out now, as a local send does
        set_issue(session, issue_id, status=IssueStatus.sending, started_at=now, send_at=None)
    elif waits:
        set_issue(session, issue_id, send_at=first)
    session.add(
        AbTest(
            issue_id=issue_id,
            subjects=subjects,
            carriers=carriers,
            sample_percent=percent,
            metric=metric,
            # Counted from the sample's first copy: readers had decide_after to click.
            decide_at=first + parse_duration(after),
        )
    )
    session.flush()
    if percent == 100 and not waits:
        decide(session, issue_id, now, None)
    status = IssueStatus.scheduled if waits else IssueStatus.sending
    return {
        "id": issue_id,
        "status": status.value,
        "recipients": sum(counts),
        "send_at": first if waits else None,
    }


def _first_due(session: Session, carriers: list[int], now: datetime) -> datetime:
    """Return when the first sample copy is due (now if one is due already)."""
    first = session.scalar(
        select(func.min(func.coalesce(Delivery.next_attempt_at, now))).where(
            Delivery.issue_id.in_(carriers)
        )
    )
    return now if first is None or first <= now else first


def _carrier(session: Session, issue: Issue, subject: str, n: int, now: datetime) -> int:
    carrier = Issue(
        slug=f"{issue.slug[:90]}-ab{n + 1}-{secrets.token_hex(3)}",
        subject=subject,
        preheader=issue.preheader,
        blocks=list(issue.blocks),
        status=IssueStatus.sending,
        automation="ab",
        started_at=now,
        newsletter_id=issue.newsletter_id,  # its masthead, sender and unsubscribe link
    )
    session.add(carrier)
    session.flush()
    freeze_content(session, carrier.id, now)
    return carrier.id


def set_issue(session: Session, issue_id: int, **values: Any) -> None:
    """Update an issue's columns in place (a test's issue or one of its carriers)."""
    session.execute(
        update(Issue)
        .where(Issue.id == issue_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def get_test(session: Session, issue_id: int) -> AbTest:
    """Return an issue's A/B test or raise NotFound."""
    test = session.get(AbTest, issue_id)
    if test is None:
        raise NotFound(f"Issue {issue_id} has no A/B test.")
    return test


def variants(session: Session, issue_id: int) -> list[dict[str, Any]] | None:
    """Return each variant's subject, sent, unique clicks, rate and whether it won (or None)."""
    test = session.get(AbTest, issue_id)
    if test is None:
        return None
    out = []
    for n, (subject, carrier_id) in enumerate(zip(test.subjects, test.carriers, strict=True)):
        sent = session.scalar(
            select(func.count()).where(
                Delivery.issue_id == carrier_id, Delivery.status == DeliveryStatus.sent
            )
        )
        clicks = _unique_clicks(session, carrier_id)
        out.append(
            {
                "subject": subject,
                "sent": int(sent or 0),
                "unique_clicks": clicks,
                "rate": round(clicks / sent, 4) if sent else 0.0,
                "winner": test.winner == n,
                "issue": carrier_id,
            }
        )
    return out


def _unique_clicks(session: Session, carrier_id: int) -> int:
    """Count a variant's clicks by people: one per reader when readers are tracked.

    Without MORNINGPOST_TRACK_READERS the reader is unknown, so each click a scanner did not
    make counts (clicks, not people). Scanner clicks never count.
    """
    base = (Click.issue_id == carrier_id, Click.scanner.is_(False))
    people = session.scalar(
        select(func.count(func.distinct(Click.subscriber_id))).where(
            *base, Click.subscriber_id.is_not(None)
        )
    )
    anonymous = session.scalar(select(func.count()).where(*base, Click.subscriber_id.is_(None)))
    return int(people or 0) + int(anonymous or 0)


def decide(
    session: Session,
    issue_id: int,
    now: datetime,
    subject: str | None,
    default_zone: str = "UTC",
) -> dict[str, Any]:
    """Pick the winner (the editor's, or the best rate, a tie to the first) and send the rest.

    A local-time test's rest is due at the same local moment as its sample (at once where it
    has passed); `default_zone` stands in for a reader's zone that no longer reads.
    """
    test = get_test(session, issue_id)
    state = session.scalar(select(Issue.status).where(Issue.id == issue_id))
    if state == IssueStatus.scheduled and test.winner is None:
        raise Conflict(f"Issue {issue_id}'s sample has not gone out yet; decide after it has.")
    if subject is not None and subject not in test.subjects:
        raise InvalidInput("subject must be one of the test's subjects.")
    if test.winner is not None:
        raise Conflict(f"Issue {issue_id}'s A/B test is decided already.")
    if subject is not None:
        winner = test.subjects.index(subject)
    else:
        rates = [v["rate"] for v in variants(session, issue_id) or []]
        winner = rates.index(max(rates)) if rates else 0
    # Compare-and-set: of two deciders (two workers, an editor) exactly one sends the rest.
    won = session.execute(
        update(AbTest)
        .where(AbTest.issue_id == issue_id, AbTest.winner.is_(None))
        .values(winner=winner, decided_at=now)
        .returning(AbTest.issue_id)
        .execution_options(synchronize_session=False)
    ).first()
    if won is None:
        raise Conflict(f"Issue {issue_id}'s A/B test is decided already.")
    chosen = test.subjects[winner]
    status = session.scalar(select(Issue.status).where(Issue.id == issue_id))
    count = 0
    if status in (IssueStatus.sending, IssueStatus.paused):
        session.execute(
            update(FrozenIssue)
            .where(FrozenIssue.issue_id == issue_id)
            .values(subject=chosen)
            .execution_options(synchronize_session=False)
        )
        had_variant = exists().where(
            Delivery.issue_id.in_(test.carriers), Delivery.subscriber_id == Subscriber.id
        )
        owner = session.execute(
            select(
                Issue.audience_filter, Issue.newsletter_id, Issue.local_time, Issue.local_date
            ).where(Issue.id == issue_id)
        ).one()
        audience = send_audience(owner.audience_filter, now, owner.newsletter_id)
        moments = None
        if owner.local_time and owner.local_date:
            wall, day = time.fromisoformat(owner.local_time), date.fromisoformat(owner.local_date)
            moments = local_moments(session, wall, day, default_zone)
        count = freeze_recipients(session, issue_id, moments, audience=and_(audience, ~had_variant))
        # The rest is queued: from now on the issue finishes like any send.
        set_issue(session, issue_id, subject=chosen, recipients=count, held_open=False)
    session.expire_all()
    return {"id": issue_id, "subject": chosen, "winner": winner, "recipients": count}


def due_tests(session: Session, now: datetime) -> list[int]:
    """Return the issues whose A/B decision is due (a paused test's waits for its resume)."""
    return list(
        session.scalars(
            select(AbTest.issue_id).where(
                AbTest.winner.is_(None), AbTest.paused_at.is_(None), AbTest.decide_at <= now
            )
        )
    )
