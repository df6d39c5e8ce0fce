"""Which organization owns a group, remembered by the API process.

Stream subscribers arrive in bursts (a page opens a socket per tab; a publish opens one per
locale list), and each connect checks that the group belongs to the caller's organization.
A group never changes hands, so its owner is remembered once the database has said it
(bounded, least recently used first out); the API key is still looked up on every connect,
so a revoked key stops opening streams at once.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_GROUPS = 10_000


class GroupOwners:
    def __init__(self, max_groups: int = MAX_GROUPS) -> None:
        self.max_groups = max_groups
        self._owners: OrderedDict[str, str] = OrderedDict()

    def get(self, group_id: str) -> str | None:
        owner = self._owners.get(group_id)
        if owner is not None:
            self._owners.move_to_end(group_id)
        return owner

    def remember(self, group_id: str, organization_id: str) -> None:
        self._owners[group_id] = organization_id
        self._owners.move_to_end(group_id)
        while len(self._owners) > self.max_groups:
            self._owners.popitem(last=False)
