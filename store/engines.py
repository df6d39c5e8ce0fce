"""An organization's engines: one default per organization, looked up by id only within
the caller's organization. What an engine's config means is ``localization/engine_plan.py``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from localization.engine_plan import fallback_provider
from store.ids import looks_like, new_id
from store.jobs import UNFINISHED
from store.tables import Engine, Job, Organization


async def create_engine(
    session: AsyncSession,
    organization_id: str,
    name: str,
    *,
    models: list[dict[str, Any]] | None = None,
    is_default: bool = False,
) -> Engine:
    if await session.get(Organization, organization_id) is None:
        raise LookupError(organization_id)
    if is_default:  # one default per organization
        await session.execute(
            update(Engine)
            .where(col(Engine.organization_id) == organization_id)
            .values(is_default=False)
        )
    engine = Engine(
        id=new_id("eng_"),
        organization_id=organization_id,
        name=name,
        is_default=is_default,
        provider=fallback_provider(models or []),
        config={"models": models or []},
    )
    session.add(engine)
    await session.commit()
    return engine


async def list_engines(session: AsyncSession, organization_id: str) -> list[Engine]:
    result = await session.exec(
        select(Engine)
        .where(Engine.organization_id == organization_id)
        .order_by(col(Engine.created_at), col(Engine.id))
    )
    return list(result.all())


async def save_engine(session: AsyncSession, engine: Engine, *, make_default: bool) -> None:
    """Insert or update ``engine``; with ``make_default`` it becomes the organization's only
    default, in the same transaction."""
    if make_default:
        await session.execute(
            update(Engine)
            .where(
                col(Engine.organization_id) == engine.organization_id, col(Engine.id) != engine.id
            )
            .values(is_default=False)
        )
        engine.is_default = True
    session.add(engine)
    await session.commit()


async def unfinished_jobs_of_engine(session: AsyncSession, engine_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Job)
        .where(col(Job.engine_id) == engine_id, col(Job.status).in_(UNFINISHED))
    )
    return int(count or 0)


async def delete_engine(session: AsyncSession, engine_id: str) -> None:
    await session.exec(delete(Engine).where(col(Engine.id) == engine_id))
    await session.commit()


async def default_engine(session: AsyncSession, organization_id: str) -> Engine | None:
    result = await session.exec(
        select(Engine).where(Engine.organization_id == organization_id, Engine.is_default)
    )
    return result.first()


async def get_engine(session: AsyncSession, organization_id: str, engine_id: str) -> Engine | None:
    if not looks_like("eng_", engine_id):  # not an id: not found, without asking the database
        return None
    engine = await session.get(Engine, engine_id)
    return engine if engine and engine.organization_id == organization_id else None
