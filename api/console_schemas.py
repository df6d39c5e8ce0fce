"""What the review console's pages and forms accept: the groups page's query string and the
bodies of its forms. Checked here like every API request (400 with ``details``), so a
handler sees only values it can use. The console answers HTML, so it has no response
models; its routes are not API operations and are not in ``/openapi.json``."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from api.query_schemas import QueryId, check_cursor
from contract import AWAITING_REVIEW, GROUP_TERMINAL, REVIEW_ACTIONS, REVIEW_MAX_ROUNDS
from localization.language import normalize_locale

# The groups page's status filter: the terminal statuses as the contract names them,
# "active" for groups still pending or processing, and awaiting_review for groups with a
# job waiting for a reviewer.
ACTIVE = "active"
GROUP_FILTERS = (ACTIVE, AWAITING_REVIEW, *sorted(GROUP_TERMINAL))
# A review form's edited strings: ``t.<n>`` is the n-th string of the job, in document order.
TEXT_FIELD = re.compile(r"t\.(\d{1,5})")
MAX_TEXT_FIELDS = 5_000
MAX_REVIEW_FORM_BYTES = 4 * 1024 * 1024  # a whole document's strings, URL-encoded

CsrfToken = Annotated[str, Field(min_length=1, max_length=256)]


class ConsoleModel(BaseModel):
    """Form fields keep HTML's names (``csrf_token``, ``api_key``); anything else is 400."""

    model_config = ConfigDict(extra="forbid")


class GroupsQuery(ConsoleModel):
    """``/console?status=&cursor=``: one filter, one page after another."""

    status: Literal[GROUP_FILTERS] | None = None  # type: ignore[valid-type]
    cursor: Annotated[str, Field(max_length=512), AfterValidator(check_cursor)] | None = None


class LoginForm(ConsoleModel):
    """The sign-in form. The key is read, checked and dropped: it is never stored."""

    api_key: Annotated[str, Field(min_length=1, max_length=200)]
    csrf_token: CsrfToken


class ActionForm(ConsoleModel):
    """A button that changes something (cancel, retry, sign out): only its CSRF token. A
    token sent as the ``X-CSRF-Token`` header instead leaves the form empty."""

    csrf_token: CsrfToken | None = None


class ReviewsQuery(ConsoleModel):
    """``/console/reviews?groupId=&targetLocale=&cursor=``: the queue, filtered."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    group_id: QueryId | None = Field(default=None, alias="groupId")
    target_locale: Annotated[str, Field(max_length=64), AfterValidator(normalize_locale)] | None = (
        Field(default=None, alias="targetLocale")
    )
    cursor: Annotated[str, Field(max_length=512), AfterValidator(check_cursor)] | None = None


class ReviewForm(ConsoleModel):
    """A review of one job from the queue: its button (``action``), the comment, and the
    edited strings as ``t.<n>`` fields (ignored by a reject). An approve whose strings are
    the draft's approves it unedited."""

    model_config = ConfigDict(extra="allow")

    csrf_token: CsrfToken | None = None
    action: Literal[REVIEW_ACTIONS]  # type: ignore[valid-type]
    comment: Annotated[str, Field(max_length=4_000)] = ""
    # The review round the page showed: a review of a round that has passed is refused.
    round: int | None = Field(default=None, ge=1, le=REVIEW_MAX_ROUNDS)

    @model_validator(mode="after")
    def _only_text_fields(self) -> ReviewForm:
        extra = self.model_extra or {}
        unknown = [name for name in extra if not TEXT_FIELD.fullmatch(name)]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        if len(extra) > MAX_TEXT_FIELDS:
            raise ValueError("too many strings")
        return self

    def texts(self) -> dict[int, str]:
        """The edited strings by their index in document order."""
        found = {}
        for name, value in (self.model_extra or {}).items():
            match = TEXT_FIELD.fullmatch(name)
            assert match is not None
            found[int(match.group(1))] = str(value)
        return found
