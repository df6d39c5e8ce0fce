"""What the API process holds for its lifetime: settings, database, Temporal client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.access import GroupOwners
from api.models import Limits
from api.progress import ProgressHub
from localization.batch import Provider
from settings import Settings
from store.db import Database
from webhooks.urls import AllowList


@dataclass
class AppState:
    settings: Settings
    db: Database
    temporal: Any  # temporalio.client.Client
    secret_key: bytes
    hub: ProgressHub
    providers: dict[str, Provider] = field(default_factory=dict)
    group_owners: GroupOwners = field(default_factory=GroupOwners)

    @property
    def callback_allow_list(self) -> AllowList:
        return AllowList.parse(self.settings.webhooks_allowed_hosts)

    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            max_strings=s.limits_max_strings,
            max_string_chars=s.limits_max_string_chars,
            max_depth=s.limits_max_depth,
            max_targets=s.limits_max_targets,
        )
