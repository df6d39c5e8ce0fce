"""Synchronous endpoints, compatible with the lingo.dev SDKs and CLI: localize one document
into one locale in the request (each call's usage recorded), recognize a text's language,
estimate a cost, and say who the caller is. Same engine rules as jobs; no workflow, no
webhook."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from activities.spending import LedgerMeter
from activities.translation import EngineRun, translate_with_engine
from api.auth import api_key
from api.errors import BadGatewayError, ServiceUnavailableError, ValidationError
from api.process_schemas import (
    CostEstimateLocale,
    CostEstimateTotals,
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
    parse_json,
    read_body,
    resolve_engine,
    validate,
    wire,
)
from api.schemas import WhoamiOut
from api.spending import refuse_when_budget_spent
from api.state import AppState
from localization.batch import ProviderBusy
from localization.dispatch import SpendStopped
from localization.engine_plan import EngineUnusable, engine_plan
from localization.language import describe, identify
from localization.payload import iter_strings
from localization.pipeline import TranslationFailed
from localization.pricing import cost_usd, is_free
from settings import batch_limits, quota_defaults
from store.tables import Engine, ProcessUsage
from store.usage import record_process_usage

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
    key = api_key(request)
    state = app_state(request)
    body = await read_body(request, state.settings.limits_max_body_bytes)
    req = validate(LocalizeRequest, parse_json(body), {"limits": state.limits})
    org_id = key.organization_id

    engine = await resolve_engine(state, org_id, req.engine_id)
    await refuse_when_budget_spent(state, org_id)

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
        await _record(state, org_id, engine.id, req, source, {})
        return wire(LocalizeOut(source_locale=source, target_locale=source, data=req.data))

    started = datetime.now(UTC)
    try:
        result = await translate_with_engine(
            req.data,
            EngineRun(
                engine=engine,
                source_locale=source,
                target_locale=req.target_locale,
                providers=state.providers,
                db=state.db,
                organization_id=org_id,
                limits=batch_limits(state.settings),
                hints=req.hints,
                meter=LedgerMeter(
                    state.db,
                    org_id,
                    engine.id,
                    req.target_locale,
                    state.settings.llm_prices,
                    quota_defaults(state.settings),
                ),
            ),
        )
    except ProviderBusy as err:
        # The provider's shared rate limit has no place now (jobs wait; a call does not).
        raise ServiceUnavailableError(
            f"translation provider at its rate limit: {err.summary}",
            retry_after=max(1, math.ceil(err.retry_after or 1)),
        ) from None
    except SpendStopped:
        # The budget ran out during this call (another call, a job): refused as a new call.
        await refuse_when_budget_spent(state, org_id)
        raise
    except EngineUnusable as err:
        raise ValidationError(
            f"engineId: {err}", [{"path": "engineId", "message": str(err)}]
        ) from None
    except TranslationFailed as err:
        if err.retryable:
            raise ServiceUnavailableError(f"translation provider unavailable: {err}") from None
        raise BadGatewayError(f"translation failed: {err}") from None
    usage = {
        **result.usage(),
        "durationMs": int((datetime.now(UTC) - started).total_seconds() * 1000),
    }
    await _record(state, org_id, engine.id, req, source, usage)
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


async def _record(
    state: AppState,
    org_id: str,
    engine_id: str,
    req: LocalizeRequest,
    source: str,
    usage: dict[str, Any],
) -> None:
    """Keep the call's usage, with what the client said about it (trigger, file, session)."""
    row = ProcessUsage(
        organization_id=org_id,
        source_locale=source,
        target_locale=req.target_locale,
        engine_id=engine_id,
        model=usage.get("model"),
        strings=usage.get("strings", 0),
        memory_hits=usage.get("memoryHits", 0),
        input_tokens=usage.get("inputTokens", 0),
        output_tokens=usage.get("outputTokens", 0),
        provider_calls=usage.get("providerCalls", 0),
        duration_ms=usage.get("durationMs", 0),
        trigger_type=req.trigger_type,
        file_path=req.metadata.file_path if req.metadata else None,
        session_id=req.session_id,
    )
    async with state.db.writing() as session:
        await record_process_usage(session, row)


async def recognize(request: Request) -> JSONResponse:
    req = validate(RecognizeRequest, parse_json(await read_body(request, SMALL_BODY_LIMIT)))
    code = await asyncio.to_thread(identify, req.text)
    return wire(RecognizeOut.model_validate(describe(code, req.label_locale)))


# Estimates: ~4 characters per token of source; the answer runs longer than the source
# (EXPANSION) and every call carries the instructions and JSON framing (CALL_OVERHEAD).
CHARS_PER_TOKEN = 4
EXPANSION = 1.3
CALL_OVERHEAD_TOKENS = 300


def _estimate_line(
    target_locale: str,
    source_chars: int,
    model: str | None,
    batch_tokens: int,
    prices: dict[str, dict[str, float]],
) -> EstimateLine:
    text_tokens = math.ceil(source_chars / CHARS_PER_TOKEN)
    calls = math.ceil(text_tokens / batch_tokens) if text_tokens else 0
    free = is_free(model)
    input_tokens = 0 if free else text_tokens + calls * CALL_OVERHEAD_TOKENS
    output_tokens = 0 if free else math.ceil(text_tokens * EXPANSION)
    cost = cost_usd(model, input_tokens, output_tokens, prices)
    return EstimateLine(
        target_locale=target_locale,
        source_chars=source_chars,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
    )


def estimated_cost(
    state: AppState, engine: Engine, source_locale: str, targets: Sequence[str], data: Any
) -> float:
    """What translating ``data`` into ``targets`` with ``engine`` is estimated to cost (USD;
    an unpriced model counts 0), as ``POST /process/estimate`` would answer."""
    source_chars = sum(len(text) for _, text in iter_strings(data))
    settings = state.settings
    total = 0.0
    for locale in targets:
        try:
            plan = engine_plan(
                engine.id, engine.config, engine.provider, source_locale, locale, state.providers
            )
        except EngineUnusable:
            continue
        line = _estimate_line(
            locale,
            source_chars,
            plan.chain[0].label,
            settings.llm_batch_tokens,
            settings.llm_prices,
        )
        total += line.cost or 0.0
    return round(total, 6)


async def estimate(request: Request) -> JSONResponse:
    key = api_key(request)
    state = app_state(request)
    req = validate(EstimateRequest, parse_json(await read_body(request, SMALL_BODY_LIMIT)))
    engine = await resolve_engine(state, key.organization_id, req.engine_id)
    settings = state.settings
    # One line per distinct locale, in first-seen order: repeats are summed (the SDK says so).
    chars: dict[str, int] = {}
    for item in req.items:
        chars[item.target_locale] = chars.get(item.target_locale, 0) + item.source_chars
    lines = []
    for locale, source_chars in chars.items():
        try:
            plan = engine_plan(
                engine.id,
                engine.config,
                engine.provider,
                req.source_locale,
                locale,
                state.providers,
            )
            model: str | None = plan.chain[0].label
        except EngineUnusable:
            model = None  # this pair would fail: nothing to spend
        lines.append(
            _estimate_line(
                locale, source_chars, model, settings.llm_batch_tokens, settings.llm_prices
            )
        )
    costs = [line.cost for line in lines]
    total = EstimateTotal(
        input_tokens=sum(line.input_tokens for line in lines),
        output_tokens=sum(line.output_tokens for line in lines),
        cost=None if None in costs else round(sum(c for c in costs if c is not None), 6),
    )
    # The SDK's CostEstimate: numbers only, an unknown price counted as 0; no service fee.
    llm_cost = round(sum(c for c in costs if c is not None), 6)
    totals = CostEstimateTotals(
        source_chars=sum(line.source_chars for line in lines),
        estimated_output_tokens=total.output_tokens,
        estimated_llm_cost_usd=llm_cost,
        estimated_localization_cost_usd=0.0,
        estimated_total_cost_usd=llm_cost,
    )
    by_locale = [
        CostEstimateLocale(
            target_locale=line.target_locale,
            source_chars=line.source_chars,
            estimated_output_tokens=line.output_tokens,
            estimated_cost_usd=line.cost or 0.0,
        )
        for line in lines
    ]
    return wire(EstimateOut(totals=totals, by_locale=by_locale, items=lines, total=total))


async def whoami(request: Request) -> JSONResponse:
    """The SDKs' identity call: ``GET /users/me`` and the key's id. Any body is ignored."""
    key = api_key(request)
    return wire(
        WhoamiOut(id=key.id, email=key.email, organization_id=key.organization_id, key_id=key.id)
    )
