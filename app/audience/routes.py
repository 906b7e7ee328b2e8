"""Editor API for the audience: tags on readers, saved segments, counts and previews."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import ColumnElement

from app.audience import segments, tags
from app.audience.filter_sql import compile_filter
from app.audience.newsletters import by_slug
from app.audience.schemas import (
    BulkTagsIn,
    BulkTagsOut,
    CountOut,
    PreviewOut,
    SegmentIn,
    SegmentOut,
    TagsIn,
    TagsOut,
)
from app.deps import IdPath, SessionDep, require_editor
from app.models import Subscriber, utcnow

segments_router = APIRouter(
    prefix="/segments", tags=["segments"], dependencies=[Depends(require_editor)]
)
tags_router = APIRouter(
    prefix="/subscribers", tags=["subscribers"], dependencies=[Depends(require_editor)]
)

FilterQuery = Annotated[str, Query(max_length=2000)]


@segments_router.get("/preview", response_model=PreviewOut)
def preview(
    session: SessionDep,
    filter: FilterQuery,
    newsletter: Annotated[str | None, Query(max_length=80)] = None,
) -> PreviewOut:
    """Count the readers a filter reaches now (of a newsletter) and show the first ten."""
    newsletter_id = by_slug(session, newsletter).id if newsletter else None
    where = segments.audience_clause(filter, utcnow(), newsletter_id)
    return PreviewOut(
        count=segments.count_matching(session, where),
        sample=segments.sample_matching(session, where),
    )


@segments_router.post("", response_model=SegmentOut, status_code=201)
def create_segment(body: SegmentIn, session: SessionDep) -> SegmentOut:
    """Save a segment (its filter must parse)."""
    newsletter_id = by_slug(session, body.newsletter).id if body.newsletter else None
    row = segments.create_segment(session, body.name, body.filter, utcnow(), newsletter_id)
    return SegmentOut.model_validate(row)


@segments_router.get("", response_model=list[SegmentOut])
def list_segments(session: SessionDep) -> list[SegmentOut]:
    """Return every saved segment."""
    return [SegmentOut.model_validate(s) for s in segments.list_segments(session)]


@segments_router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: IdPath, session: SessionDep) -> SegmentOut:
    """Return one segment."""
    return SegmentOut.model_validate(segments.get_segment(session, segment_id))


@segments_router.get("/{segment_id}/count", response_model=CountOut)
def count_segment(segment_id: IdPath, session: SessionDep) -> CountOut:
    """Count the readers a segment reaches now (as a send would freeze them)."""
    segment = segments.get_segment(session, segment_id)
    where = segments.segment_clause(segment, utcnow())
    return CountOut(count=segments.count_matching(session, where))


@segments_router.delete("/{segment_id}", status_code=204)
def delete_segment(segment_id: IdPath, session: SessionDep) -> Response:
    """Delete a saved segment (sends already frozen are unchanged)."""
    session.delete(segments.get_segment(session, segment_id))
    return Response(status_code=204)


@tags_router.post("/tags", response_model=BulkTagsOut)
def bulk_tags(body: BulkTagsIn, session: SessionDep) -> BulkTagsOut:
    """Add and remove tags on every reader named by ids, a segment or a filter (any status)."""
    now = utcnow()
    where: ColumnElement[bool]
    if body.ids is not None:
        where = Subscriber.id.in_(body.ids)
    elif body.segment is not None:
        # A segment is its newsletter's readers who match, not everyone who matches its filter.
        segment = segments.get_segment(session, body.segment)
        where = segments.send_audience(segment.filter, now, segment.newsletter_id)
    else:
        where = compile_filter(body.filter or "", now)
    return BulkTagsOut(**tags.bulk_tags(session, where, body.add, body.remove, now))


@tags_router.post("/{subscriber_id}/tags", response_model=TagsOut)
def add_tags(subscriber_id: IdPath, body: TagsIn, session: SessionDep) -> TagsOut:
    """Tag one reader; answer with their tags."""
    return TagsOut(tags=tags.add_tags(session, subscriber_id, body.tags, utcnow()))


@tags_router.delete("/{subscriber_id}/tags/{tag}", response_model=TagsOut)
def remove_tag(
    subscriber_id: IdPath, tag: Annotated[str, Path(max_length=64)], session: SessionDep
) -> TagsOut:
    """Remove a tag from one reader; answer with their tags."""
    return TagsOut(tags=tags.remove_tag(session, subscriber_id, tag))
