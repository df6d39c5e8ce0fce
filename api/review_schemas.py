"""Human review on the wire (``api/reviews.py``): the review queue's query and items, and
a review of one job (API.md, "Pipeline stages")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from api.query_schemas import QueryId, check_cursor
from api.schemas import StrictWireModel, Timestamp, WireModel
from localization.language import normalize_locale


class ListReviewsQuery(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    status: Literal["pending"] = "pending"
    group_id: QueryId | None = None
    target_locale: Annotated[str, Field(max_length=64), AfterValidator(normalize_locale)] | None = (
        None
    )
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, Field(max_length=512), AfterValidator(check_cursor)] | None = None


class ReviewItem(WireModel):
    id: str
    group_id: str
    target_locale: str
    created_at: Timestamp
    review_due_at: str | None


class ReviewList(WireModel):
    items: list[ReviewItem]
    next_cursor: str | None


class ReviewRequest(StrictWireModel):
    """``approve`` with an optional edit of the output under review (``data``, the source's
    structure) and comment, or ``reject`` with the comment that instructs the next round."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    action: Literal["approve", "reject"]
    data: dict[str, Any] | None = None
    comment: Annotated[str, Field(min_length=1, max_length=4_000)] | None = None
