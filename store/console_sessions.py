"""The review console's sessions: opened by signing in with an API key, read on every
console request, deleted by signing out. A session is only as alive as the key that
opened it: a revoked key ends its sessions from the next request on."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import ApiKey, ConsoleSession, utcnow


def session_hash(session_id: str) -> str:
    """The row id of a session: the hash of what the cookie carries, never the id itself."""
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(
    session: AsyncSession, session_id: str, key: ApiKey, ttl_seconds: int
) -> ConsoleSession:
    """A new session for ``key``; expired sessions of any organization go at the same
    time, so the table holds only live ones and sessions that will expire."""
    now = utcnow()
    await session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= now))
    row = ConsoleSession(
        id=session_hash(session_id),
        organization_id=key.organization_id,
        api_key_id=key.id,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(row)
    await session.commit()
    return row


async def live_session(session: AsyncSession, session_id: str) -> ConsoleSession | None:
    """The session the cookie names while it is unexpired and its key is not revoked."""
    query = (
        select(ConsoleSession)
        .join(ApiKey, col(ApiKey.id) == col(ConsoleSession.api_key_id))
        .where(
            ConsoleSession.id == session_hash(session_id),
            col(ConsoleSession.expires_at) > utcnow(),
            col(ApiKey.revoked_at).is_(None),
        )
    )
    return (await session.exec(query)).first()


async def close_session(session: AsyncSession, session_id: str) -> bool:
    """Delete the session (signing out); False when there was none."""
    result = await session.exec(
        delete(ConsoleSession).where(col(ConsoleSession.id) == session_hash(session_id))
    )
    await session.commit()
    return bool(result.rowcount)
