"""Benchmark: segment counts and a segment freeze on PostgreSQL at a million readers.

    python bench/segments.py [--readers 1000000] [--database postgresql://…]

Fills a scratch database with readers over three newsletters (each reader takes one, a third of
them a second one; 20 tags, about two each; attributes; sign-up days over 400 days; five time
zones; a seventh of them clicked in the last 60 days), then times, three
times each, the count of a tag filter and of compound filters as GET /segments/{id}/count runs
them, prints each query plan, and times freezing a segment of about half the readers into
deliveries (the INSERT … SELECT a segment send runs). Targets (issue "Audience"): a tag count
under 1 s, a compound one under 3 s, a 500k freeze under 20 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, text

from app.audience.segments import audience_clause, count_matching, send_audience
from app.db import make_engine, make_sessionmaker, session_scope
from app.models import Issue, Newsletter, Subscriber, utcnow
from app.sends.store.ledger import freeze_recipients
from bench.common import scratch_database

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
FILTERS = {
    "tag": "tag:t3",
    "compound": (
        'tag:t3 and not tag:t7 and attr.plan = "pro" and joined > 2026-06-01 '
        'and timezone ~ "Asia/*"'
    ),
    "compound with clicks": "(tag:t1 or tag:t2) and clicked within 30d and attr.seats > 10",
}
FREEZE = "attr.seats > 24"  # seats are 0..49: about half the readers
NEWSLETTER = 2  # counts and the freeze are of one newsletter's readers, as a segment's are


def fill(engine_url: str, readers: int) -> None:
    """Insert readers, their tags and some clicks with set-based SQL."""
    engine = make_engine(engine_url)
    with session_scope(make_sessionmaker(engine)) as session:
        session.add(Issue(slug="clicked", subject="S", status="sent", blocks=[]))
        session.add_all(Newsletter(slug=f"n{k}", name=f"N{k}") for k in (2, 3))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (email, email_hash, name, status, consent_source,"
                " created_at, status_changed_at, confirmed_at, timezone, attributes)"
                " SELECT 'reader' || i || '@example.test', md5('reader' || i) || md5(i::text),"
                " 'Reader ' || i, 'active', 'bench', now() - make_interval(days => i % 400),"
                " now(), now(),"
                " (ARRAY['Europe/Berlin','Europe/Paris','America/New_York','Asia/Tokyo','UTC'])"
                "[1 + i % 5],"
                " json_build_object('plan', (ARRAY['pro','free','team','trial'])[1 + (i / 7) % 4],"
                " 'seats', i % 50, 'beta', i % 3 = 0)"
                " FROM generate_series(1, :n) AS i"
            ),
            {"n": readers},
        )
        conn.execute(
            text(
                "INSERT INTO subscriber_tags (subscriber_id, tag, created_at)"
                " SELECT s.id, 't' || k, now() FROM subscribers s"
                " CROSS JOIN generate_series(0, 19) AS k"
                " WHERE (s.id * 7 + k * 13) % 10 = 0"
            )
        )
        # Each reader takes newsletter 1 + i % 3; every third also the next one.
        conn.execute(
            text(
                "INSERT INTO subscriptions (subscriber_id, newsletter_id, status, created_at,"
                " updated_at) SELECT s.id, n.id, 'active', now(), now() FROM subscribers s"
                " JOIN newsletters n ON n.id = 1 + s.id % 3"
                " OR (s.id % 3 = 0 AND n.id = 1 + (s.id + 1) % 3)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO clicks (issue_id, link_index, url, subscriber_id, scanner,"
                " clicked_at) SELECT (SELECT id FROM issues WHERE slug = 'clicked'), 0,"
                " 'https://x.test', s.id, false, now() - make_interval(days => s.id % 60)"
                " FROM subscribers s WHERE s.id % 7 = 0"
            )
        )
        conn.execute(text("ANALYZE"))
    engine.dispose()


def run(database: str, readers: int, reuse: bool = False) -> None:
    """Fill, count, explain, freeze; print the figures."""
    scratch = nullcontext(database) if reuse else scratch_database(database)
    with scratch as url:
        began = time.perf_counter()
        if not reuse:
            fill(url, readers)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with session_scope(sessions) as session:
            total = session.scalar(select(func.count()).select_from(Subscriber))
            tag_rows = session.scalar(text("SELECT count(*) FROM subscriber_tags"))
        print(
            f"{total:,} readers, {tag_rows:,} tags, filled in {time.perf_counter() - began:.1f} s"
        )
        for label, source in FILTERS.items():
            times = []
            count = 0
            for _ in range(3):
                with session_scope(sessions) as session:
                    start = time.perf_counter()
                    count = count_matching(session, audience_clause(source, utcnow(), NEWSLETTER))
                    times.append(time.perf_counter() - start)
            print(
                f"\n{label}: {source}\n  count {count:,}; {statistics.median(times):.3f} s median"
                f" of 3 ({', '.join(f'{t:.3f}' for t in times)})"
            )
            with session_scope(sessions) as session:
                stmt = (
                    select(func.count())
                    .select_from(Subscriber)
                    .where(audience_clause(source, utcnow(), NEWSLETTER))
                )
                compiled = stmt.compile(engine, compile_kwargs={"literal_binds": True})
                plan = session.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}")).all()
                for (line,) in plan:
                    print(f"    {line}")
        freezes: list[tuple[str, str | None, int | None]] = [
            (f"{FREEZE!r} over every newsletter", FREEZE, None),
            (f"all of newsletter {NEWSLETTER}'s readers", None, NEWSLETTER),
        ]
        for n, (label, segment, newsletter) in enumerate(freezes):
            with session_scope(sessions) as session:
                issue = Issue(
                    slug=f"segment-send-{n}-{time.time_ns()}",
                    subject="S",
                    status="draft",
                    blocks=[],
                )
                session.add(issue)
                session.flush()
                start = time.perf_counter()
                frozen = freeze_recipients(
                    session, issue.id, audience=send_audience(segment, utcnow(), newsletter)
                )
            took = time.perf_counter() - start
            print(f"\nfreeze of {label}: {frozen:,} deliveries in {took:.1f} s (target < 20 s)")
        engine.dispose()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--database", default=DEFAULT_PG)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="--database is already filled (by bench.segments.fill): count and freeze only",
    )
    args = parser.parse_args()
    if not args.database.startswith("postgres"):
        parser.error("this benchmark is for PostgreSQL")
    run(args.database, args.readers, args.reuse)


if __name__ == "__main__":
    main()
