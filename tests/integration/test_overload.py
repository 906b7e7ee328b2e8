"""Under overload a request waits its turn or is told to come back (503, Retry-After), never 500.

Issue 17, item 3: 100 concurrent authenticated GET /issues/{id}/stats gave many 500s
("QueuePool limit … reached") and /healthz stalled 30–60 s; 60 console requests, 38 × 500.
"""

from __future__ import annotations

import httpx2

from app.context import Context
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.health_probe import HealthProbe
from tests.helpers import add_subscribers, new_issue
from tests.load import Answer, fire_at_once

# Liveness, not speed: before the admission gate /healthz stalled 30–60 s here, and that is
# what this bound catches. On the shared 2-core CI machine (two suites, four test processes)
# sixty console pages starved it of CPU for 3.2 s once, with every answer right. The < 1 s
# figure is printed by bench/healthz_under_load.py, and test_event_loop_stays_free.py keeps a
# tight bound where one request at a time shows whether the event loop is blocked.
HEALTH_BOUND = 10.0
TIMEOUT = 120.0


def _no_server_errors(answers: list[Answer]) -> None:
    statuses = [a.status for a in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert all(a.retry_after for a in answers if a.status == 503)
    assert statuses.count(200) > 0


def test_a_hundred_stats_at_once_wait_their_turn(
    live: tuple[str, Context], editor: dict[str, str]
) -> None:
    url, ctx = live
    add_subscribers(ctx, 50)
    with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        issue = new_issue(client, editor)
    with HealthProbe(url) as probe:
        answers = fire_at_once(
            url,
            [{"method": "GET", "path": f"/issues/{issue['id']}/stats", "headers": editor}] * 100,
        )
    _no_server_errors(answers)
    assert set(probe.answers) == {200}, probe.answers
    assert probe.worst < HEALTH_BOUND, f"/healthz waited {probe.worst:.2f} s"


def test_sixty_console_pages_at_once_wait_their_turn(live: tuple[str, Context]) -> None:
    url, ctx = live
    add_account(ctx)
    with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        signed = client.post("/editor/login", data={"email": EMAIL, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        cookies = dict(client.cookies)
    with HealthProbe(url) as probe:
        answers = fire_at_once(
            url, [{"method": "GET", "path": "/editor/", "cookies": cookies}] * 60
        )
    assert set(probe.answers) == {200}, probe.answers
    _no_server_errors(answers)  # a 303 to the sign-in page would be a lost session
    assert probe.worst < HEALTH_BOUND, f"/healthz waited {probe.worst:.2f} s"


def test_one_subscriber_erased_by_several_requests_at_once(
    live: tuple[str, Context], editor: dict[str, str]
) -> None:
    url, ctx = live
    (reader,) = add_subscribers(ctx, 1)
    answers = fire_at_once(
        url, [{"method": "DELETE", "path": f"/subscribers/{reader}", "headers": editor}] * 8
    )
    statuses = [a.status for a in answers]
    assert 204 in statuses and set(statuses) <= {204, 404}, statuses


def test_one_issue_or_suppression_deleted_by_several_requests_at_once(
    live: tuple[str, Context], editor: dict[str, str]
) -> None:
    url, _ = live
    with httpx2.Client(base_url=url, timeout=TIMEOUT, headers=editor) as client:
        issue = new_issue(client, editor)
        entry = client.post("/suppressions", json={"email": "gone@example.org"})
        assert entry.status_code == 201, entry.text
    for path in (f"/issues/{issue['id']}", f"/suppressions/{entry.json()['id']}"):
        answers = fire_at_once(url, [{"method": "DELETE", "path": path, "headers": editor}] * 8)
        statuses = [a.status for a in answers]
        assert 204 in statuses and set(statuses) <= {204, 404, 409}, (path, statuses)
