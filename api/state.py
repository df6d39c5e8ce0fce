"""What the API process holds for its lifetime: settings, database, Temporal client."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from typing import Any

from api.access import GroupOwners
from api.progress.hub import ProgressHub
from api.quotas import QuotaLimits, quota_limits
from api.schemas import RequestLimits
from localization.batch import Provider
from settings import Settings, request_limits
from store.db import Database
from webhooks.urls import AllowList


class TemporalHealth:
    """Whether Temporal answers, as this process last saw it. Free while all is well: only
    after a call failed does ``available`` ask the server (a health check, at most every
    ``recheck_seconds``), so that while Temporal is away a POST is refused at once with a
    503, before anything is stored, rather than after a start that times out."""

    def __init__(self, recheck_seconds: float = 0.5, timeout_seconds: float = 1.0) -> None:
        self.ok = True
        self.recheck_seconds = recheck_seconds
        self.timeout_seconds = timeout_seconds
        self._checked_at = 0.0

    def failed(self) -> None:
        """A call failed: the next ``available`` asks the server (a connection that was
        cut fails its first call and then works)."""
        self.ok = False
        self._checked_at = 0.0

    async def available(self, temporal: Any) -> bool:
        if self.ok:
            return True
        if time.monotonic() - self._checked_at < self.recheck_seconds:
            return False
        self._checked_at = time.monotonic()
        deadline = self._checked_at + self.timeout_seconds
        # Twice: the first call on a connection that was cut fails at once, then it works.
        for _ in range(2):
            try:
                await asyncio.wait_for(
                    temporal.service_client.check_health(),
                    max(0.05, deadline - time.monotonic()),
                )
            except Exception:
                continue
            self.ok = True
            return True
        return False


@dataclass
class AppState:
    settings: Settings
    db: Database
    temporal: Any  # temporalio.client.Client
    secret_key: bytes
    hub: ProgressHub
    providers: dict[str, Provider] = field(default_factory=dict)
    group_owners: GroupOwners = field(default_factory=GroupOwners)
    temporal_health: TemporalHealth = field(default_factory=TemporalHealth)

    @property
    def callback_allow_list(self) -> AllowList:
        return AllowList.parse(self.settings.webhooks_allowed_hosts)

    @functools.cached_property
    def quota_limits(self) -> QuotaLimits:
        """The organizations' quotas as this process last read them (``api/quotas.py``)."""
        return quota_limits(self.settings)

    @functools.cached_property
    def limits(self) -> RequestLimits:
        """What one request may hold (validation context)."""
        return request_limits(self.settings)
