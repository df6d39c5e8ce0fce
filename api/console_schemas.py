"""What the review console's pages and forms accept: the groups page's query string and the
bodies of its forms. Checked here like every API request (400 with ``details``), so a
handler sees only values it can use. The console answers HTML, so it has no response
models; its routes are not API operations and are not in ``/openapi.json``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.query_schemas import check_cursor
from contract import GROUP_TERMINAL

# The groups page's status filter: the terminal statuses as the contract names them, and
# "active" for groups still pending or processing.
ACTIVE = "active"
GROUP_FILTERS = (ACTIVE, *sorted(GROUP_TERMINAL))

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
