"""Editor API for A/B tests: decide now (the best so far, or the editor's pick)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.automations import abtests
from app.deps import ContextDep, IdPath, SessionDep, require_editor
from app.models import utcnow

router = APIRouter(prefix="/issues", tags=["issues"], dependencies=[Depends(require_editor)])


class DecideIn(BaseModel):
    """Optional body: the subject that wins; without it the best rate so far wins."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, max_length=250)


@router.post("/{issue_id}/ab/decide")
def decide(
    issue_id: IdPath,
    session: SessionDep,
    ctx: ContextDep,
    data: DecideIn | None = Body(default=None),
) -> Any:
    """Decide an A/B test now and send the rest of the list the winning subject."""
    subject = data.subject if data else None
    return abtests.decide(session, issue_id, utcnow(), subject, ctx.settings.default_timezone)
