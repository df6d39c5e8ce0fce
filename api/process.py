"""Synchronous endpoints, compatible with the lingo.dev SDKs: localize one document into one
locale in the request, and recognize a text's language. Same engine rules as jobs; no
workflow, no webhook."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse

from api.errors import BadGatewayError, ServiceUnavailableError, ValidationError
from api.models import (
    EstimateItem,
    EstimateLine,
    EstimateOut,
    EstimateRequest,
    EstimateTotal,
    LocalizeOut,
    LocalizeRequest,
    RecognizeOut,
    RecognizeRequest,
)
from api.requests import (
    app_state,
    authenticate,
    parse_json,
    read_body,
    resolve_engine,
    validate,
    wire,
)
from localization.language import describe, identify
from localization.models import EngineUnusable, engine_plan
from localization.payload import iter_strings
from localization.pipeline import TranslationFailed, translate_document
from providers import pipeline_limits
from store.memory import DatabaseMemory

SMALL_BODY_LIMIT = 512 * 1024  # recognize and estimate
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
        plan = engine_plan(
            engine.id, engine.config, engine.provider, source, req.target_locale, state.providers
        )
    except EngineUnusable as err:
        raise ValidationError(
            f"engineId: {err}", [{"path": "engineId", "message": str(err)}]
        ) from None
    started = datetime.now(UTC)
    try:
        result = await translate_document(
            req.data,
            source_locale=source,
            target_locale=req.target_locale,
            plan=plan,
            providers=state.providers,
            memory=DatabaseMemory(state.db, org_id),
            limits=pipeline_limits(state.settings),
            hints=req.hints,
        )
    except TranslationFailed as err:
        if err.retryable:
            raise ServiceUnavailableError(f"translation provider unavailable: {err}") from None
        raise BadGatewayError(f"translation failed: {err}") from None
    usage = {
        **result.usage(),
        "durationMs": int((datetime.now(UTC) - started).total_seconds() * 1000),
    }
    return wire(
        LocalizeOut(
            source_locale=source,
            target_locale=req.target_locale,
            data=result.output,
            model=result.model,
            usage=usage,
            warnings=result.warnings,
        )
    )


async def recognize(request: Request) -> JSONResponse:
    await authenticate(request)
    req = validate(RecognizeRequest, parse_json(await read_body(request, SMALL_BODY_LIMIT)))
    code = await asyncio.to_thread(identify, req.text)
    return wire(RecognizeOut.model_validate(describe(code, req.label_locale)))


# Estimates: ~4 characters per token of source; the answer runs longer than the source
# (EXPANSION) and every call carries the instructions and JSON framing (CALL_OVERHEAD).
CHARS_PER_TOKEN = 4
EXPANSION = 1.3
CALL_OVERHEAD_TOKENS = 300


def _estimate_line(
    item: EstimateItem, model: str | None, batch_tokens: int, prices: dict[str, dict[str, float]]
) -> EstimateLine:
    text_tokens = math.ceil(item.source_chars / CHARS_PER_TOKEN)
    calls = math.ceil(text_tokens / batch_tokens) if text_tokens else 0
    free = model is None or model.split("/", 1)[0] == "pseudo"
    input_tokens = 0 if free else text_tokens + calls * CALL_OVERHEAD_TOKENS
    output_tokens = 0 if free else math.ceil(text_tokens * EXPANSION)
    price = prices.get(model or "")
    cost: float | None = 0.0 if free else None
    if price is not None and not free:
        cost = round(
            (input_tokens * price.get("input", 0.0) + output_tokens * price.get("output", 0.0))
            / 1_000_000,
            6,
        )
    return EstimateLine(
        target_locale=item.target_locale,
        source_chars=item.source_chars,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
    )


async def estimate(request: Request) -> JSONResponse:
    key = await authenticate(request)
    state = app_state(request)
    req = validate(EstimateRequest, parse_json(await read_body(request, SMALL_BODY_LIMIT)))
    engine = await resolve_engine(state, key.organization_id, req.engine_id)
    settings = state.settings
    lines = []
    for item in req.items:
        try:
            plan = engine_plan(
                engine.id,
                engine.config,
                engine.provider,
                req.source_locale,
                item.target_locale,
                state.providers,
            )
            model: str | None = plan.chain[0].label
        except EngineUnusable:
            model = None  # this pair would fail: nothing to spend
        lines.append(_estimate_line(item, model, settings.llm_batch_tokens, settings.llm_prices))
    costs = [line.cost for line in lines]
    total = EstimateTotal(
        input_tokens=sum(line.input_tokens for line in lines),
        output_tokens=sum(line.output_tokens for line in lines),
        cost=None if None in costs else round(sum(c for c in costs if c is not None), 6),
    )
    return wire(EstimateOut(items=lines, total=total))
