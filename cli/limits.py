"""``tolk orgs limits ORG``: read or set one organization's quotas (API.md, "Quotas,
budgets and usage"). A value is a number, ``none`` (no limit) or ``default`` (the server's,
``quotas`` in ``temporal-dev.yaml``). Without options it prints the limits as they apply."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from cli import output
from cli.admin import _settings, admin_session, orgs

NO_LIMIT, DEFAULT = "none", "default"


def _option(flag: str, what: str) -> Any:
    """The option of one quota: a number, ``none`` or ``default``."""
    return typer.Option(None, flag, metavar="N|none|default", show_default=False, help=what)


Quota = str | None


def _value(name: str, given: str, integer: bool) -> float | int | None:
    """A limit as typed: a number (0 or more), or None for ``none``."""
    if given == NO_LIMIT:
        return None
    try:
        number = int(given) if integer else float(given)
    except ValueError:
        output.fail(f"{name}: {given!r} is not a number, 'none' or 'default'")
    if number < 0 or number != number:  # negative, or NaN
        output.fail(f"{name}: {given!r} must be 0 or more")
    return number


async def _apply(
    org_id: str, changes: dict[str, Any], cleared: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    import contract
    from settings import quota_defaults
    from store import quotas
    from store.tables import Organization

    settings = _settings()
    async with admin_session(settings) as session:
        if await session.get(Organization, org_id) is None:
            raise LookupError(org_id)
        if changes or cleared:
            own = await quotas.set_limits(session, org_id, changes, cleared)
        else:
            own = await quotas.own_limits(session, org_id)
    assert set(own) <= set(contract.QUOTAS)
    return quotas.effective_limits(quota_defaults(settings), own), own


@orgs.command("limits", help="show or set an organization's quotas")
def limits(
    org: Annotated[str, typer.Argument(metavar="ORG_ID")],
    requests_per_minute: Quota = _option(
        "--requests-per-minute", "requests per minute, every keyed route"
    ),
    active_groups: Quota = _option("--active-groups", "groups not yet terminal"),
    monthly_budget_usd: Quota = _option("--monthly-budget-usd", "USD per calendar month (UTC)"),
    monthly_tokens: Quota = _option("--monthly-tokens", "input + output tokens per month"),
    as_json: output.json_mode = False,
) -> None:
    import contract

    given = {
        contract.REQUESTS_PER_MINUTE: (requests_per_minute, True),
        contract.ACTIVE_GROUPS: (active_groups, True),
        contract.MONTHLY_BUDGET_USD: (monthly_budget_usd, False),
        contract.MONTHLY_TOKENS: (monthly_tokens, True),
    }
    changes, cleared = {}, []
    for name, (value, integer) in given.items():
        if value is None:
            continue
        if value == DEFAULT:
            cleared.append(name)
        else:
            changes[name] = _value(name, value, integer)
    try:
        effective, own = asyncio.run(_apply(org, changes, cleared))
    except LookupError:
        output.fail(f"unknown organization {org}", 1)
    if as_json:
        print(json.dumps({"organizationId": org, "limits": effective, "own": sorted(own)}))
        return
    for name, value in effective.items():
        shown = NO_LIMIT if value is None else f"{value:g}" if isinstance(value, float) else value
        print(f"{name}: {shown}{'' if name in own else ' (default)'}")
