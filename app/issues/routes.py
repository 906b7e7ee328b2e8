"""Editors' issue API: thin handlers over app.issues.service."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from app.automations import abtests
from app.deps import ContextDep, IdPath, SessionDep, require_editor
from app.errors import InvalidInput
from app.issues import service
from app.issues.markdown_format import issue_to_markdown, parse_issue_markdown
from app.issues.preflight_json import preflight_json
from app.issues.schemas import (
    IssueIn,
    IssueOut,
    IssuePatch,
    RequeuedOut,
    SendIn,
    SendOut,
    SendStats,
    TestSendIn,
    TestSendOut,
)
from app.media.service import own_media_size
from app.models import DeliveryStatus, utcnow
from app.routing import GuardedRoute, read_body_off_loop
from app.sends.schemas import DeliveryPageOut
from app.sends.store.log import MAX_LIMIT

# Every route here is for editors: the check runs before any body is read.
router = APIRouter(prefix="/issues", tags=["issues"], dependencies=[Depends(require_editor)])


MARKDOWN_TYPES = ("text/markdown", "text/x-markdown")


class MarkdownBodyRoute(GuardedRoute):
    """A route whose JSON body may also come as Markdown (`Content-Type: text/markdown`).

    The Markdown is read into the same JSON body before FastAPI sees it, so the handler, its
    validation and the OpenAPI schema of the JSON body stay the ones of a plain JSON route.
    It is read only after the editor check (a request without a token gets its 401 before a
    byte of its body is read) and parsed in a thread, never on the event loop.
    """

    async def prepare(self, request: Request) -> None:
        """Turn a Markdown body into the JSON body it stands for; other bodies as usual."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in MARKDOWN_TYPES:
            await read_body_off_loop(request)
            return
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("The Markdown must be UTF-8 text.") from None
        issue = await run_in_threadpool(parse_issue_markdown, text)
        headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
        headers.append((b"content-type", b"application/json"))
        request.scope["headers"] = headers
        request.__dict__.pop("_headers", None)  # read again from the scope: JSON now
        request._body = issue.model_dump_json().encode()
        request._json = issue.model_dump(mode="json")


MARKDOWN_EXAMPLE = """---
subject: The Specialization Wave
preheader: Small models, big gains
---
## Domain-Specific AI Models Challenge One-Size-Fits-All {lead}
From Arabic speech recognition to **mathematical reasoning**.

## Weekend Reading {links}
- [The Case for Small Language Models](https://example.org/slm) — why small wins
"""


def create_issue(data: IssueIn, session: SessionDep, ctx: ContextDep) -> Any:
    """Create a draft issue from JSON, or from Markdown with `Content-Type: text/markdown`."""
    return service.create_issue(session, data, ctx.renderer)


router.add_api_route(
    "",
    create_issue,
    methods=["POST"],
    status_code=201,
    response_model=IssueOut,
    route_class_override=MarkdownBodyRoute,
    # The JSON body is documented from IssueIn; the Markdown form is added beside it.
    openapi_extra={
        "requestBody": {
            "content": {
                "text/markdown": {"schema": {"type": "string"}, "example": MARKDOWN_EXAMPLE}
            }
        }
    },
)


@router.get("", response_model=list[IssueOut])
def list_issues(session: SessionDep, status: str | None = None) -> Any:
    """List issues, newest first."""
    return service.list_issues(session, status)


@router.get("/{issue_id}", response_model=IssueOut)
def get_issue(issue_id: IdPath, session: SessionDep, response: Response) -> Any:
    """Return one issue; its ETag names the version to give PATCH as If-Match."""
    issue = service.get_issue(session, issue_id)
    response.headers["ETag"] = service.issue_etag(issue)
    return issue


@router.patch(
    "/{issue_id}",
    response_model=IssueOut,
    responses={
        409: {"description": "The issue is no longer a draft or scheduled (its send started)."},
        412: {"description": "If-Match names an older version: someone saved in between."},
    },
)
def update_issue(
    issue_id: IdPath,
    patch: IssuePatch,
    session: SessionDep,
    ctx: ContextDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Change a draft or scheduled issue; with If-Match, only if nobody saved since (else 412)."""
    issue = service.update_issue(
        session,
        issue_id,
        patch,
        ctx.renderer,
        if_version=service.etag_version(issue_id, if_match),
    )
    response.headers["ETag"] = service.issue_etag(issue)
    return issue


@router.delete("/{issue_id}", status_code=204)
def delete_issue(issue_id: IdPath, session: SessionDep) -> Response:
    """Delete a draft."""
    service.delete_issue(session, issue_id)
    return Response(status_code=204)


@router.get(
    "/{issue_id}/markdown",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}},
)
def markdown(issue_id: int, session: SessionDep) -> Response:
    """Return the issue as Markdown; POSTing it to /issues creates the same blocks again."""
    text = issue_to_markdown(service.get_issue(session, issue_id))
    return Response(text, media_type="text/markdown; charset=utf-8")


@router.get("/{issue_id}/preview", response_class=HTMLResponse)
def preview(issue_id: IdPath, session: SessionDep, ctx: ContextDep) -> HTMLResponse:
    """Return the email exactly as a subscriber will see it."""
    issue = service.get_issue(session, issue_id)
    head = service.issue_masthead(session, ctx.renderer, issue)
    return HTMLResponse(service.preview_html(ctx.renderer, ctx.tokens, issue, head))


@router.get("/{issue_id}/check")
def check(
    issue_id: IdPath, session: SessionDep, ctx: ContextDep, links: bool = True
) -> dict[str, Any]:
    """Run the preflight: what would block or hurt this issue's send (the cheap part also runs
    before every send). `links=false` skips fetching the links (slow; warnings only)."""
    issue = service.get_issue(session, issue_id)
    size_of = own_media_size(ctx.media, ctx.settings.base_url)
    report = service.preflight(ctx.renderer, issue, size_of, session=session)
    found = list(report.findings)
    if links and report.targets:
        # Nothing was written: end the transaction before seconds of network I/O (on SQLite a
        # transaction holds the write lock). This handler runs in a worker thread; the fetches
        # run on the event loop meanwhile.
        session.commit()
        found += anyio.from_thread.run(service.check_links, ctx.links, report)
    return preflight_json(report, found, links_checked=links)


@router.post("/{issue_id}/test", status_code=202, response_model=TestSendOut)
def test_send(
    issue_id: IdPath, data: TestSendIn, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """Queue [TEST] copies to the given addresses."""
    queued = service.queue_test_send(session, issue_id, data.to, ctx.renderer)
    return {"id": issue_id, "queued": queued}


@router.post("/{issue_id}/send", status_code=202, response_model=SendOut)
def send(
    issue_id: IdPath,
    session: SessionDep,
    ctx: ContextDep,
    data: SendIn | None = Body(default=None),
) -> Any:
    """Send now, schedule when send_at is in the future, or at a local time per reader."""
    now = utcnow()
    if data is not None and data.ab is not None:
        service.keep_send_audience(session, issue_id, data, now)  # its segment or filter
        return abtests.start_ab(session, issue_id, data.ab, now, ctx.renderer, when=data)
    return service.send_issue(session, issue_id, data, now, ctx.renderer)


@router.post("/{issue_id}/cancel", status_code=200)
def cancel(issue_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """Stop a scheduled or sending issue."""
    return service.cancel_issue(session, issue_id, utcnow())


@router.post("/{issue_id}/pause", status_code=200)
def pause(issue_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """Pause a sending issue; resume continues where it stopped."""
    return service.pause_issue(session, issue_id, utcnow())


@router.post("/{issue_id}/resume", status_code=200)
def resume(issue_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """Resume a paused issue."""
    return service.resume_issue(session, issue_id, utcnow())


@router.get("/{issue_id}/stats", response_model=SendStats)
def stats(issue_id: IdPath, session: SessionDep) -> SendStats:
    """Return delivery counts, status, rate (msgs/s over the last minute) and ETA."""
    out = service.stats(session, issue_id)
    variants = abtests.variants(session, issue_id)
    if variants is not None:
        return out.model_copy(update={"variants": variants})  # an extra key: A/B sends only
    return out


@router.get("/{issue_id}/deliveries", response_model=DeliveryPageOut)
def deliveries(
    issue_id: IdPath,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    q: Annotated[str | None, Query(max_length=320)] = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> Any:
    """Page through who got the issue: status, attempts and the relay's last reply each."""
    return service.issue_deliveries(
        session, issue_id, status=status, q=q, cursor=cursor, limit=limit
    )


@router.post("/{issue_id}/resend-unknown", status_code=202, response_model=RequeuedOut)
def resend_unknown(issue_id: IdPath, session: SessionDep) -> Any:
    """Send the deliveries whose fate is unknown again, once (some readers may get two)."""
    return {"requeued": service.resend_unknown(session, issue_id, utcnow())}
