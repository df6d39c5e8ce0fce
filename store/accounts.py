"""Organizations and their API keys: creating them, authenticating a request's key,
revoking and listing keys. The key format itself is ``store/api_keys.py``."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import api_keys
from store.ids import new_id
from store.tables import ApiKey, Engine, Organization, utcnow


async def create_organization(session: AsyncSession, name: str) -> Organization:
    org = Organization(id=new_id("org_"), name=name)
    session.add(org)
    await session.flush()
    session.add(
        Engine(
            id=new_id("eng_"),
            organization_id=org.id,
            name="Default",
            description="Offline pseudo-localization",
            is_default=True,
            provider="pseudo",
        )
    )
    await session.commit()
    return org


async def create_api_key(session: AsyncSession, organization_id: str, email: str) -> str:
    """Create a key and return it in full; only its hash and visible prefix are stored."""
    if await session.get(Organization, organization_id) is None:
        raise LookupError(organization_id)
    prefix, key = api_keys.new_key()
    session.add(
        ApiKey(
            id=prefix, organization_id=organization_id, key_hash=api_keys.hash_key(key), email=email
        )
    )
    await session.commit()
    return key


def _live(row: ApiKey | None, key: str, revoked: bool = False) -> ApiKey | None:
    """The row of ``key`` when the whole key matches its hash and it is not revoked; with
    ``revoked``, a revoked key's row too (its ``revoked_at`` set), so that a caller can tell
    a revoked key (403) from an unknown one (401)."""
    if row is None or not api_keys.matches(key, row.key_hash):
        return None
    return row if revoked or row.revoked_at is None else None


async def authenticate(session: AsyncSession, key: str, *, revoked: bool = False) -> ApiKey | None:
    """The live key's row, or None. With ``revoked``, a revoked key's row as well (see
    ``_live``)."""
    prefix = api_keys.key_prefix(key)
    return _live(await session.get(ApiKey, prefix), key, revoked) if prefix else None


async def revoke_api_key(session: AsyncSession, key_or_id: str) -> ApiKey | None:
    """Revoke a key, named by its id (the visible prefix, ``tolk_ab12cd34``) or in full; it
    opens nothing from the next request on. None when there is no such key. Revoking again
    keeps the first revocation time."""
    row = await session.get(ApiKey, api_keys.key_prefix(key_or_id) or key_or_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        await session.commit()
    return row


async def list_api_keys(session: AsyncSession, organization_id: str | None = None) -> list[ApiKey]:
    """Every key (or one organization's), oldest first: ids and dates, for an operator to
    find the one to revoke. Only hashes are stored, so no key can be shown again."""
    query = select(ApiKey).order_by(col(ApiKey.created_at), col(ApiKey.id))
    if organization_id is not None:
        query = query.where(ApiKey.organization_id == organization_id)
    return list((await session.exec(query)).all())
