"""The built-in offline provider: deterministic pseudo-localization of each masked text,
and the deterministic reviewer of ``localization/pseudo_review.py``."""

from __future__ import annotations

import asyncio
from typing import Any

from localization import pseudo_review
from localization.batch import SCORE, BatchAnswer, BatchRequest, ReviewRequest
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

    async def review(self, model: str | None, request: ReviewRequest) -> BatchAnswer:
        return BatchAnswer(texts=await asyncio.to_thread(_verdicts, request))


def _verdicts(request: ReviewRequest) -> dict[str, Any]:
    verdicts: dict[str, Any] = {}
    for item in request.items:
        if request.mode == SCORE:
            value, reason = pseudo_review.score(item.source, item.translation, request.glossary)
            verdicts[item.id] = {"score": value, "reason": reason}
        else:
            grade, reason = pseudo_review.drift(
                item.source, item.translation, item.back_translation or "", request.glossary
            )
            verdicts[item.id] = {"drift": grade, "reason": reason}
    return verdicts
