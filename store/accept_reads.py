"""The synchronous reads behind accepting work: a keyed request's API key, and everything
``POST /jobs/localization`` must know before it stores a group (the engine, a group of the
same idempotency key, the organization's own limits, its active groups).

Each is a plain function of a synchronous ``Session``, run by ``Database.read``: on a
SQLite file all of a request's reads are one hop to the reader thread, instead of a
session and several round trips through aiosqlite's thread each (BENCHMARKS.md,
"accept"). They read committed rows only, so what another process committed before the
request arrived is seen (a revoked key, a new engine, a raised limit)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlmodel import select

import contract
from store import api_keys, rate_limits
from store.groups import active_groups_query
from store.ids import looks_like
from store.quotas import effective_limits
from store.tables import ApiKey, Engine, JobGroup, OrgLimits


def api_key_row(session: Session, key: str) -> ApiKey | None:
    """The row of ``key`` when the whole key matches its hash, revoked or not (the caller
    tells a revoked key, 403, from an unknown one, 401); None otherwise."""
    prefix = api_keys.key_prefix(key)
    row = session.get(ApiKey, prefix) if prefix else None
    return row if row is not None and api_keys.matches(key, row.key_hash) else None


@dataclass(frozen=True)
class Admission:
    """What a new group is admitted on. ``engine``: the one named, or the default (None:
    no such engine of the organization). ``existing``: the group of this idempotency key,
    if any. ``own_limits``: the organization's own quotas, as stored now.
    ``active_groups``: its groups not yet terminal; counted only for a new group (no
    ``existing``) of an organization with an ``activeGroups`` limit, else None."""

    engine: Engine | None
    existing: JobGroup | None
    own_limits: dict[str, Any]
    active_groups: int | None
    previous_requests: tuple[int, int | None]


def admission(
    session: Session,
    organization_id: str,
    engine_id: str | None,
    group_id: str | None,
    defaults: Mapping[str, Any],
    rate_window: int,
) -> Admission:
    """The reads of one ``POST /jobs/localization``, in one go. ``group_id``: the group an
    idempotency key names (None without a key); ``defaults``: the server's quotas;
    ``rate_window``: the request's minute, whose previous minute's count the rate limit
    carries over (``store.rate_limits.count``'s ``previous``)."""
    if engine_id is None:
        engine = session.scalars(
            select(Engine).where(Engine.organization_id == organization_id, Engine.is_default)
        ).first()
    else:
        found = session.get(Engine, engine_id) if looks_like("eng_", engine_id) else None
        engine = found if found is not None and found.organization_id == organization_id else None
    existing = None
    if group_id is not None and looks_like("ljg_", group_id):
        group = session.get(JobGroup, group_id)
        existing = group if group is not None and group.organization_id == organization_id else None
    own_row = session.get(OrgLimits, organization_id)
    own = dict(own_row.limits) if own_row is not None else {}
    active = None
    if existing is None and effective_limits(defaults, own).get(contract.ACTIVE_GROUPS) is not None:
        active = int(session.scalar(active_groups_query(organization_id)) or 0)
    previous = session.scalar(rate_limits.previous_count_query(organization_id, rate_window))
    return Admission(engine, existing, own, active, (rate_window, previous))
