"""Content-addressed documents: sources and outputs are stored once per organization as
``Blob`` rows, named by their sha256; jobs and groups hold the reference (a claim check)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import dialect_insert
from store.tables import Blob, utcnow


def encode_document(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


async def put_blob(session: AsyncSession, organization_id: str, body: bytes) -> str:
    """Store ``body`` once per organization; return its sha256 reference. Caller commits."""
    digest = hashlib.sha256(body).hexdigest()
    insert = dialect_insert(session.get_bind().dialect.name)
    # Concurrent writers may store the same document: the second insert is a no-op.
    await session.exec(
        insert(Blob)
        .values(
            organization_id=organization_id,
            sha256=digest,
            body=body,
            size=len(body),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )
    return digest


async def get_blob(session: AsyncSession, organization_id: str, ref: str) -> bytes:
    blob = await session.get(Blob, (organization_id, ref))
    if blob is None:
        raise LookupError(f"blob {ref}")
    return blob.body


async def blob_size(session: AsyncSession, organization_id: str, ref: str) -> int:
    size = await session.scalar(
        select(Blob.size).where(Blob.organization_id == organization_id, Blob.sha256 == ref)
    )
    if size is None:
        raise LookupError(f"blob {ref}")
    return int(size)


async def get_document(session: AsyncSession, organization_id: str, ref: str) -> Any:
    return json.loads(await get_blob(session, organization_id, ref))
