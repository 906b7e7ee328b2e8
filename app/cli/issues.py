"""`morningpost issues`: create from a file, list, send."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.base import _fail, _setup, _usage, console, issues_cli, out
from app.cli.progress import _deliver, _print_final


@issues_cli.command("create")
def issues_create(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The issue: FILE.md or FILE.json.")
    ],
) -> None:
    """Create a draft issue from a Markdown or JSON file; print its id."""
    from app.db import session_scope
    from app.errors import DomainError
    from app.issues.service import create_issue

    issue_in = _read_issue_file(file)
    ctx = _setup(migrate=True)
    try:
        with session_scope(ctx.sessions) as session:
            issue_id = create_issue(session, issue_in, ctx.renderer).id
    except DomainError as exc:
        raise _fail(exc) from None
    out.print(issue_id)
    ctx.close()


def _read_issue_file(file: Path) -> Any:
    """Read FILE.md (Markdown with front matter) or FILE.json (the API's body) as an IssueIn."""
    from pydantic import ValidationError

    from app.errors import InvalidInput
    from app.issues.markdown_format import parse_issue_markdown
    from app.issues.schemas import IssueIn

    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError:
        raise _usage(f"{file} is not UTF-8 text") from None
    suffix = file.suffix.lower()
    try:
        if suffix in (".md", ".markdown"):
            return parse_issue_markdown(text)
        if suffix == ".json":
            return IssueIn.model_validate_json(text)
    except InvalidInput as exc:
        raise _usage(f"{file}: {exc.message}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise _usage(f"{file}: {where + ': ' if where else ''}{err['msg']}") from None
    raise _usage(f"{file}: expected a .md or .json file")


@issues_cli.command("list")
def issues_list(
    status_filter: Annotated[
        str | None, typer.Option("--status", help="Only issues in this status, e.g. draft.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List issues, newest first: id, status, recipients, send time, subject."""
    from app.db import session_scope
    from app.errors import DomainError
    from app.issues.schemas import IssueOut
    from app.issues.service import list_issues

    ctx = _setup()
    try:
        with session_scope(ctx.sessions) as session:
            issues = [IssueOut.model_validate(i) for i in list_issues(session, status_filter)]
    except DomainError as exc:
        raise _fail(exc) from None
    ctx.close()
    if as_json:
        fields = ("id", "slug", "subject", "status", "recipients", "send_at", "finished_at")
        rows = [i.model_dump(mode="json", include=set(fields)) for i in issues]
        out.print_json(data=rows)
        return
    if not issues:
        console.print("no issues yet: morningpost issues create FILE.md")
        return
    lines = [("ID", "STATUS", "RECIPIENTS", "SEND AT (UTC)", "SUBJECT")]
    for i in issues:
        when = i.send_at.strftime("%Y-%m-%d %H:%M") if i.send_at else "-"
        lines.append((str(i.id), i.status, str(i.recipients), when, i.subject))
    # Plain aligned columns, one line per issue: readable, and easy to grep or cut.
    widths = [max(len(r[c]) for r in lines) for c in range(4)]
    for r in lines:
        cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2])]
        typer.echo("  ".join([*cells, r[3].ljust(widths[3]), r[4]]))


@issues_cli.command("send")
def issues_send(
    issue_id: int,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Schedule for this moment (ISO 8601; no offset means UTC)."),
    ] = None,
    local_time: Annotated[
        str | None,
        typer.Option("--local-time", help="Each reader's wall-clock time, HH:MM (with --date)."),
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="The day of a --local-time send, YYYY-MM-DD.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Deliver now, in this process, with a progress bar.")
    ] = False,
) -> None:
    """Send an issue now, at a time (--at), or at a local time per reader (--local-time)."""
    from app.errors import InvalidInput
    from app.issues.schemas import read_send_in

    try:
        # The API's own reading of the send (app.issues.schemas.SendIn), in its own words.
        data = read_send_in(send_at=at, local_time=local_time, date=date)
    except InvalidInput as exc:
        raise _usage(exc.message) from None

    from app.db import session_scope
    from app.errors import DomainError
    from app.issues.service import send_issue
    from app.models import utcnow

    ctx = _setup(migrate=True, announce=True)
    try:
        with session_scope(ctx.sessions) as session:
            result = send_issue(session, issue_id, data, utcnow(), ctx.renderer)
    except DomainError as exc:
        raise _fail(exc) from None
    if data.local_time is not None:
        first = result["send_at"].strftime("%Y-%m-%d %H:%M UTC")
        out.print(
            f"issue {issue_id} goes to {result['recipients']} readers at {local_time} their time "
            f"on {date} (the first at {first}; readers whose moment has passed get it at once)",
            highlight=False,
            soft_wrap=True,
        )
    elif result["status"] == "scheduled":
        when = result["send_at"].strftime("%Y-%m-%d %H:%M UTC")
        out.print(f"issue {issue_id} scheduled for {when}", highlight=False)
        if wait:
            console.print("--wait: nothing to deliver before the scheduled time")
    else:
        out.print(f"issue {issue_id} sending to {result['recipients']} readers", highlight=False)
        if wait:
            _deliver(ctx, [issue_id])
            _print_final(ctx, issue_id)
        else:
            console.print(
                "a running `morningpost serve` or `morningpost worker` delivers it; "
                f"follow it with `morningpost status {issue_id}`"
            )
    ctx.close()
