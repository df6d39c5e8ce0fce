"""Synchronous endpoints, compatible with the lingo.dev SDKs: localize one document into one
locale in the request, and recognize a text's language. Same engine rules as jobs; no
workflow, no webhook."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse

from api.errors import ValidationError
from api.models import LocalizeOut, LocalizeRequest, RecognizeOut, RecognizeRequest
from api.requests import (
    app_state,
    authenticate,
    parse_json,
    read_body,
    resolve_engine,
    validate,
    wire,
)
from localization.document import translate_document
from localization.language import describe, identify
from localization.models import EngineUnusable, pick_model
from localization.payload import iter_strings

RECOGNIZE_BODY_LIMIT = 512 * 1024
DETECT_SAMPLE_CHARS = 2_000


def _sample(data: dict[str, object]) -> str:
    """The document's text, enough of it to tell the language."""
    parts, size = [], 0
    for _, text in iter_strings(data):
        parts.append(text)
        size += len(text)
        if size >= DETECT_SAMPLE_CHARS:
            break
    return "\n".join(parts)


async def localize(request: Request) -> JSONResponse:
    key = await authenticate(request)
    state = app_state(request)
    body = await read_body(request, state.settings.limits_max_body_bytes)
    req = validate(LocalizeRequest, parse_json(body), {"limits": state.limits})
    org_id = key.organization_id

    engine = await resolve_engine(state, org_id, req.engine_id)

    source = req.source_locale
    if source is None:
        sample = _sample(req.data)
        if not sample.strip():
            raise ValidationError(
                "sourceLocale: the document has no text to detect its language from; give it",
                [{"path": "sourceLocale", "message": "cannot be detected"}],
            )
        source = describe(await asyncio.to_thread(identify, sample))["locale"]
    if source == req.target_locale:  # nothing to translate
        return wire(LocalizeOut(source_locale=source, target_locale=source, data=req.data))

    try:
        choice, provider = pick_model(
            engine.id,
            engine.config.get("models", []),
            engine.provider,
            source,
            req.target_locale,
        )
    except EngineUnusable as err:
        raise ValidationError(
            f"engineId: {err}", [{"path": "engineId", "message": str(err)}]
        ) from None
    started = datetime.now(UTC)
    result = await asyncio.to_thread(
        translate_document, req.data, source, req.target_locale, provider
    )
    usage = {
        "strings": result.strings,
        "memoryHits": 0,
        "inputTokens": 0,
        "outputTokens": 0,
        "durationMs": int((datetime.now(UTC) - started).total_seconds() * 1000),
    }
    return wire(
        LocalizeOut(
            source_locale=source,
            target_locale=req.target_locale,
            data=result.output,
            model=choice.label,
            usage=usage,
        )
    )


async def recognize(request: Request) -> JSONResponse:
    await authenticate(request)
    req = validate(RecognizeRequest, parse_json(await read_body(request, RECOGNIZE_BODY_LIMIT)))
    code = await asyncio.to_thread(identify, req.text)
    return wire(RecognizeOut.model_validate(describe(code, req.label_locale)))
