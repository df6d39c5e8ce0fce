"""An organization's quotas: its own (``OrgLimits``) over the server's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

import contract
from store.tables import OrgLimits, utcnow


def effective_limits(defaults: Mapping[str, Any], own: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every quota of ``contract.QUOTAS``: the organization's where it set one (null: no
    limit), else the server's default."""
    own = own or {}
    return {name: own[name] if name in own else defaults.get(name) for name in contract.QUOTAS}


async def own_limits(session: AsyncSession, organization_id: str) -> dict[str, Any]:
    row = await session.get(OrgLimits, organization_id)
    return dict(row.limits) if row is not None else {}


async def set_limits(
    session: AsyncSession, organization_id: str, changes: Mapping[str, Any], cleared: list[str]
) -> dict[str, Any]:
    """Set quotas (``changes``, a value or None for no limit) and drop others back to the
    server's default (``cleared``); returns the organization's own quotas afterwards."""
    row = await session.get(OrgLimits, organization_id)
    limits = dict(row.limits) if row is not None else {}
    limits.update(changes)
    for name in cleared:
        limits.pop(name, None)
    if row is None:
        row = OrgLimits(organization_id=organization_id, limits=limits)
    else:
        row.limits, row.updated_at = limits, utcnow()
    session.add(row)
    await session.commit()
    return limits
