"""The query string of ``GET /jobs/localization``: its filters and its cursor, checked here
so that the database query never sees a value it cannot compare."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from api.schemas import WireModel
from contract import JOB_STATUSES
from localization.language import normalize_locale


def _utc_time(moment: datetime) -> datetime:
    """A time with an offset, as UTC (a time without one is UTC); refused when its UTC form
    falls outside the years 1 to 9999 (``0001-01-01T00:00:00+23:59``)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


# "...T10:00:00+02:00" written into a URL unencoded arrives with a space for its "+".
_SPACED_OFFSET = re.compile(r"^(\S+T\S+) (\d\d(?::?\d\d)?)$")


def _plus_offset(value: object) -> object:
    """Read a space before a time's offset as the "+" a URL query turned into it."""
    if isinstance(value, str) and (spaced := _SPACED_OFFSET.match(value)):
        return f"{spaced[1]}+{spaced[2]}"
    return value


CURSOR_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def check_cursor(cursor: str) -> str:
    """A cursor as ``GET /jobs/localization`` hands them out: base64url of
    ``<createdAt ISO-8601 with offset>|<job id>``. Anything else is refused here, so that
    the query never sees a time it cannot compare or an id no job can have."""
    problem = ValueError("not a cursor returned by this API")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        moment = datetime.fromisoformat(created)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise problem from None
    if moment.tzinfo is None or not CURSOR_ID.match(job_id):
        raise problem
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise problem from None
    return cursor


# Ids in query filters: at most 64 printable ASCII characters (no id has more, and none has
# a control character a database could choke on).
QueryId = Annotated[str, Field(max_length=64, pattern=r"^[\x21-\x7e]*$")]


class ListJobsQuery(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    status: Literal[JOB_STATUSES] | None = None  # type: ignore[valid-type]
    engine_id: QueryId | None = None
    group_id: QueryId | None = None
    target_locale: Annotated[str, Field(max_length=64), AfterValidator(normalize_locale)] | None = (
        None
    )
    created_after: (
        Annotated[datetime, BeforeValidator(_plus_offset), AfterValidator(_utc_time)] | None
    ) = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, Field(max_length=512), AfterValidator(check_cursor)] | None = None
