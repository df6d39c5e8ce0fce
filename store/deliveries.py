"""An organization's webhook settings and signing secrets, and the log of delivery
attempts. A secret's format is the signing rule's (``webhooks/signing.py``): callers hand
in the function that makes one, so the store knows nothing of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import contract
from store.tables import Delivery, WebhookConfig, utcnow


async def webhook_config(
    session: AsyncSession, organization_id: str, new_secret: Callable[[], str]
) -> WebhookConfig:
    """The organization's webhook settings, created (with a new secret) on first use."""
    config = await session.get(WebhookConfig, organization_id)
    if config is not None:
        return config
    try:
        config = WebhookConfig(organization_id=organization_id, secret=new_secret())
        session.add(config)
        await session.commit()
        return config
    except IntegrityError:  # another process created it first: use theirs
        await session.rollback()
        existing = await session.get(WebhookConfig, organization_id)
        if existing is None:
            raise
        return existing


async def set_default_webhook_url(
    session: AsyncSession, organization_id: str, url: str | None, new_secret: Callable[[], str]
) -> WebhookConfig:
    config = await webhook_config(session, organization_id, new_secret)
    config.default_url, config.updated_at = url, utcnow()
    session.add(config)
    await session.commit()
    return config


async def rotate_webhook_secret(
    session: AsyncSession,
    organization_id: str,
    overlap: timedelta,
    new_secret: Callable[[], str],
) -> WebhookConfig:
    config = await webhook_config(session, organization_id, new_secret)
    now = utcnow()
    config.previous_secret, config.previous_until = config.secret, now + overlap
    config.secret, config.updated_at = new_secret(), now
    session.add(config)
    await session.commit()
    return config


async def record_delivery(session: AsyncSession, delivery: Delivery) -> None:
    if delivery.series == 1 and delivery.attempt == 1:
        # A job's new event (its run after a retry) supersedes the previous run's event,
        # whose pending retries were stopped by that retry.
        await session.execute(
            update(Delivery)
            .where(
                col(Delivery.job_id) == delivery.job_id,
                col(Delivery.event_id) != delivery.event_id,
                col(Delivery.outcome) == contract.RETRYING,
            )
            .values(outcome=contract.SUPERSEDED, next_attempt_at=None)
        )
    session.add(delivery)
    await session.commit()


async def job_deliveries(
    session: AsyncSession, organization_id: str, job_id: str
) -> list[Delivery]:
    result = await session.exec(
        select(Delivery)
        .where(Delivery.organization_id == organization_id, Delivery.job_id == job_id)
        .order_by(col(Delivery.id))
    )
    return list(result.all())
