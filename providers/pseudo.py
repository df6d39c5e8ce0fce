"""The built-in offline provider: deterministic pseudo-localization of each masked text."""

from __future__ import annotations

import asyncio

from localization.batch import BatchAnswer, BatchRequest
from localization.pseudo import pseudo_localize


class PseudoProvider:
    name = "pseudo"
    remembers = False  # free and deterministic: recomputing beats storing
    batching = False

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        texts = [item.text for item in request.items]
        # CPU-bound on big batches: keep the event loop (heartbeats, other jobs) responsive.
        out = await asyncio.to_thread(lambda: [pseudo_localize(text) for text in texts])
        return BatchAnswer(texts={item.id: t for item, t in zip(request.items, out, strict=True)})
