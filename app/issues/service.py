"""Issues: create, edit, preview, test-send, send, cancel. Services flush; callers commit."""

from __future__ import annotations

from app.issues.drafts import (
    EDITABLE,
    create_issue,
    delete_issue,
    duplicate_issue,
    etag_version,
    get_issue,
    issue_etag,
    list_issues,
    slugify,
    update_issue,
)

# The issue service, in rooms of one purpose each; these names stay importable from here.
from app.issues.previews import compile_issue, issue_masthead, preview_html
from app.issues.progress import issue_deliveries, issue_progress, stats
from app.issues.recipients import count_send, issue_audience, part_filter, planned_audience
from app.issues.send_checks import Preflight, check_links, pre_send_check, preflight, send_gate
from app.issues.sending import (
    STOPPABLE,
    cancel_issue,
    keep_send_audience,
    local_moments,
    pause_issue,
    queue_test_send,
    resend_unknown,
    resume_issue,
    send_issue,
    unschedule_issue,
)

__all__ = [
    "EDITABLE",
    "STOPPABLE",
    "Preflight",
    "cancel_issue",
    "check_links",
    "compile_issue",
    "count_send",
    "create_issue",
    "delete_issue",
    "duplicate_issue",
    "etag_version",
    "get_issue",
    "issue_audience",
    "issue_deliveries",
    "issue_etag",
    "issue_masthead",
    "issue_progress",
    "keep_send_audience",
    "list_issues",
    "local_moments",
    "part_filter",
    "pause_issue",
    "planned_audience",
    "pre_send_check",
    "preflight",
    "preview_html",
    "queue_test_send",
    "resend_unknown",
    "resume_issue",
    "send_gate",
    "send_issue",
    "slugify",
    "stats",
    "unschedule_issue",
    "update_issue",
]
