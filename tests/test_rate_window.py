"""The request rate's sliding window on a real SQLite file: a refusal names the exact
moment one more request fits (``RateCheck.fits_at``), which an API process relies on to
refuse until then without asking the database again (``api/quotas.py``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from store import accounts, rate_limits
from store.db import Database
from store.tables import RateWindow

WINDOW = 29_000_000  # a clock minute (minutes since the epoch)
START = WINDOW * rate_limits.WINDOW_SECONDS


def test_a_refusal_names_the_moment_one_more_request_fits(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}")
        await db.create_schema()
        try:
            async with db.writing() as session:
                org = (await accounts.create_organization(session, "acme")).id
                # Two requests in the previous minute, none in this one, a limit of 2: the
                # previous minute weighs 2 * (60 - t) / 60, and one more fits once that
                # is at most 1, at t = 30 s.
                session.add(RateWindow(organization_id=org, window=WINDOW - 1, count=2))
                await session.commit()

            async def take(now: float) -> rate_limits.RateCheck:
                async with db.writing() as session:
                    return await rate_limits.take(session, org, 2, now)

            refused = await take(START + 10)
            assert not refused.allowed and refused.remaining == 0
            assert refused.fits_at == START + 30 and refused.retry_after == 20
            assert not (await take(START + 29.99)).allowed
            allowed = await take(START + 30)
            assert allowed.allowed
            # This minute is now full for a while: one counted, the previous still weighs 1
            # until t = 60, when the next minute starts with this one's single request.
            full = await take(START + 31)
            assert not full.allowed and full.fits_at == START + 60
            assert (await take(START + 60)).allowed
        finally:
            await db.close()

    asyncio.run(scenario())
