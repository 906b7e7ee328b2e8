"""Editor API for sequences: create, list, read, edit (pause, resume, steps), delete, stats."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from app.audience.newsletters import get_newsletter
from app.automations.sequences import service
from app.automations.sequences.schemas import (
    SequenceIn,
    SequenceOut,
    SequencePatch,
    SequenceStats,
    StepOut,
    dump_steps,
)
from app.deps import IdPath, SessionDep, require_editor
from app.models import utcnow

router = APIRouter(prefix="/sequences", tags=["sequences"], dependencies=[Depends(require_editor)])


def _out(session: Session, sequence_id: int) -> SequenceOut:
    seq = service.get_sequence(session, sequence_id)
    steps = [
        StepOut(issue=s.template_issue_id, after=s.after, at=s.at, carrier=s.carrier_issue_id)
        for s in service.current_steps(session, seq.id)
    ]
    return SequenceOut(
        id=seq.id,
        name=seq.name,
        newsletter=get_newsletter(session, seq.newsletter_id).slug,
        builtin=seq.builtin,
        trigger=service.trigger_out(seq.trigger),
        status=seq.status,
        backfill=seq.backfill,
        steps=steps,
    )


@router.post("", response_model=SequenceOut, status_code=201)
def create_sequence(body: SequenceIn, session: SessionDep) -> SequenceOut:
    """Create an active sequence from draft issues used as templates."""
    seq = service.create_sequence(
        session, body.name, body.trigger, dump_steps(body.steps), body.backfill, body.newsletter
    )
    return _out(session, seq.id)


@router.get("", response_model=list[SequenceOut])
def list_sequences(session: SessionDep) -> list[SequenceOut]:
    """Return every sequence with its steps."""
    return [_out(session, s.id) for s in service.list_sequences(session)]


@router.get("/{sequence_id}", response_model=SequenceOut)
def get_sequence(sequence_id: IdPath, session: SessionDep) -> SequenceOut:
    """Return one sequence."""
    return _out(session, sequence_id)


@router.patch("/{sequence_id}", response_model=SequenceOut)
def update_sequence(sequence_id: IdPath, body: SequencePatch, session: SessionDep) -> SequenceOut:
    """Rename, pause or resume, or replace the steps."""
    steps = dump_steps(body.steps) if body.steps is not None else None
    service.update_sequence(session, sequence_id, body.name, body.status, steps, utcnow())
    return _out(session, sequence_id)


@router.delete("/{sequence_id}", status_code=204)
def delete_sequence(sequence_id: IdPath, session: SessionDep) -> Response:
    """Stop a sequence for good; steps queued and not yet sent are cancelled (not a built-in)."""
    service.delete_sequence(session, sequence_id, utcnow())
    return Response(status_code=204)


@router.get("/{sequence_id}/stats", response_model=SequenceStats)
def sequence_stats(sequence_id: IdPath, session: SessionDep) -> SequenceStats:
    """Return each step's due, sent, failed, unknown and the readers still on their way."""
    return SequenceStats.model_validate(service.sequence_stats(session, sequence_id, utcnow()))
