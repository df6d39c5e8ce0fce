"""Provider configuration, Retry-After parsing and the rate limits' window (pure, or on a
SQLite file and a PostgreSQL server; the wire formats are exercised against the fake
provider in test_llm.py, the limits across two workers in test_provider_limits.py)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from localization.batch import ProviderError
from providers import ProviderConfigError, build_providers, close_providers, provider_configs
from providers.http import HttpProvider, retry_after
from providers.limits import CallLog, Limiter, RateLimits, window_wait
from settings import Settings
from store.db import Database
from store.tables import ProviderCall
from tests.postgres import PostgresServer


def test_usual_keys_add_providers_and_entries_override_or_add(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = Settings(
        llm_providers={
            "anthropic": {"max_output_tokens": 4096},
            "ollama": {"type": "openai", "base_url": "http://127.0.0.1:11434/v1",
                       "api_key_env": "OLLAMA_KEY", "temperature": None},
        }
    )  # fmt: skip
    monkeypatch.setenv("OLLAMA_KEY", "unused")
    configs = provider_configs(settings)
    assert sorted(configs) == ["anthropic", "ollama"]
    assert configs["anthropic"] == {
        "type": "anthropic",
        "base_url": "https://api.anthropic.com",
        "api_key": "sk-ant",
        "max_output_tokens": 4096,
    }
    assert configs["ollama"]["api_key"] == "unused"
    providers = build_providers(settings)
    assert sorted(providers) == ["anthropic", "ollama", "pseudo"]
    assert getattr(providers["ollama"], "temperature", 0) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "deepl", "base_url": "https://x"}, "type must be one of openai, anthropic"),
        ({"type": "openai"}, "base_url is required"),
    ],
)
def test_bad_provider_entries_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, entry: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProviderConfigError, match=f"llm.providers.mine: {message}"):
        provider_configs(Settings(llm_providers={"mine": entry}))
    with pytest.raises(ProviderConfigError, match="built in"):
        build_providers(Settings(llm_providers={"pseudo": {"type": "openai", "base_url": "x"}}))


def test_retry_after_in_its_forms() -> None:
    def response(**headers: str) -> httpx.Response:
        return httpx.Response(429, headers=headers)

    assert retry_after(response()) is None
    assert retry_after(response(**{"retry-after": "7"})) == 7.0
    assert retry_after(response(**{"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after(response(**{"retry-after": later})) or 0) <= 31
    assert retry_after(response(**{"retry-after": "soon"})) is None


@pytest.mark.parametrize("value", [0, -3, 2.5, "10", True])
@pytest.mark.parametrize("key", ["requests_per_minute", "tokens_per_minute"])
def test_rate_limits_must_be_positive_integers(
    monkeypatch: pytest.MonkeyPatch, key: str, value: Any
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    entry = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", key: value}
    with pytest.raises(ProviderConfigError, match=f"llm.providers.mine: {key} must be a positive"):
        build_providers(Settings(llm_providers={"mine": entry}))


def test_only_providers_with_rate_limits_get_a_limiter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    base = {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}",
        llm_providers={"free": base, "capped": {**base, "requests_per_minute": 3,
                                                "tokens_per_minute": 9000}},
    )  # fmt: skip
    providers = build_providers(settings)
    free, capped = providers["free"], providers["capped"]
    assert isinstance(free, HttpProvider) and free.limiter is None
    assert isinstance(capped, HttpProvider) and capped.limiter is not None
    assert capped.limiter.calls.limits == RateLimits(3, 9000)
    asyncio.run(close_providers(providers))


def test_window_wait_counts_requests_and_tokens_over_the_last_60_s() -> None:
    rpm = RateLimits(requests_per_minute=3)
    assert window_wait([], 100.0, rpm, 10) == 0
    assert window_wait([(50.0, 1), (60.0, 1)], 100.0, rpm, 10) == 0
    # Three in the window: the oldest leaves it at 110.
    assert window_wait([(50.0, 1), (60.0, 1), (70.0, 1)], 100.0, rpm, 10) == pytest.approx(10)
    # Calls that left the window do not count, whatever their order.
    assert window_wait([(70.0, 1), (30.0, 1), (60.0, 1)], 100.0, rpm, 10) == 0
    assert window_wait([(40.0, 1), (60.0, 1), (70.0, 1)], 100.0, rpm, 10) == 0
    # Five in the window (another process reserved meanwhile): three must leave first.
    five = [(90.0, 1), (50.0, 1), (60.0, 1), (80.0, 1), (70.0, 1)]
    assert window_wait(five, 100.0, rpm, 10) == pytest.approx(30)

    tpm = RateLimits(tokens_per_minute=1000)
    assert window_wait([(50.0, 400), (60.0, 300)], 100.0, tpm, 300) == 0
    assert window_wait([(50.0, 400), (60.0, 300)], 100.0, tpm, 301) == pytest.approx(10)
    assert window_wait([(50.0, 400), (60.0, 300)], 100.0, tpm, 800) == pytest.approx(20)
    # A call bigger than the limit on its own waits for an empty window, then goes.
    assert window_wait([(50.0, 400), (60.0, 300)], 100.0, tpm, 5000) == pytest.approx(20)
    assert window_wait([], 100.0, tpm, 5000) == 0

    both = RateLimits(requests_per_minute=2, tokens_per_minute=1000)
    assert window_wait([(50.0, 900), (70.0, 10)], 100.0, both, 50) == pytest.approx(10)
    assert window_wait([(50.0, 10), (70.0, 950)], 100.0, both, 50) == pytest.approx(10)
    assert window_wait([(50.0, 10), (70.0, 950)], 100.0, both, 100) == pytest.approx(30)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}"
        return
    server = PostgresServer().start()
    try:
        yield server.url
    finally:
        server.stop()


def test_the_call_log_reserves_atomically_and_counts_a_call_until_60_s_after_its_answer(
    database_url: str,
) -> None:
    async def scenario() -> None:
        db = Database(database_url)
        await db.create_schema()
        # Two logs of one provider on two connections, as two workers would have.
        other_db = Database(db.url)
        one = CallLog(db, "capped", RateLimits(requests_per_minute=3))
        two = CallLog(other_db, "capped", RateLimits(requests_per_minute=3))
        elsewhere = CallLog(db, "another", RateLimits(requests_per_minute=1))
        now = 1000.0
        got = await asyncio.gather(*(log.reserve(10, now) for log in [one, two] * 6))
        ids = [call_id for call_id, _ in got if call_id is not None]
        assert len(ids) == 3, got
        assert [wait for call_id, wait in got if call_id is None] == [60.0] * 9
        assert (await elsewhere.reserve(10, now))[0] is not None  # its own window
        # Answered at 1005, 1003 and 1004: they count until 1063 to 1065, not 1060.
        for call_id, answered in zip(ids, (1005.0, 1003.0, 1004.0), strict=True):
            await (one if call_id % 2 else two).answered(call_id, 42, now=answered)
        assert await one.reserve(10, 1059.0) == (None, pytest.approx(4.0))
        assert await two.reserve(10, 1062.5) == (None, pytest.approx(0.5))
        assert (await two.reserve(10, 1063.0))[0] is not None
        assert await one.reserve(10, 1063.5) == (None, pytest.approx(0.5))
        await db.close()
        await other_db.close()

    asyncio.run(scenario())


def test_a_call_waits_for_its_place_within_its_budget_and_says_how_long_beyond_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}")
        await db.create_schema()
        calls = CallLog(db, "capped", RateLimits(requests_per_minute=1))
        # Outside an activity a call may wait as long as one call may take.
        patient, hasty = Limiter(calls, call_timeout=30), Limiter(calls, call_timeout=0)
        leaves = time.time() + 0.5
        assert (await calls.reserve(10, now=leaves - 60))[0] is not None  # leaves soon
        with pytest.raises(ProviderError) as refused:
            await hasty.acquire(10)
        assert refused.value.retryable and 0 < (refused.value.retry_after or 0) <= 0.5
        await patient.acquire(10)
        assert time.time() >= leaves
        with pytest.raises(ProviderError, match="at the rate limit of provider capped") as full:
            await hasty.acquire(10)
        assert 59 < (full.value.retry_after or 0) <= 60
        await db.close()

    asyncio.run(scenario())


def test_calls_two_windows_old_are_deleted(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}")
        await db.create_schema()
        calls = CallLog(db, "capped", RateLimits(requests_per_minute=5))
        for at in (1000.0, 1100.0):
            assert (await calls.reserve(10, now=at))[0] is not None
        calls._cleaned = 0.0  # as in a process that has not cleaned for a window
        assert (await calls.reserve(10, now=1125.0))[0] is not None
        async with db.session() as session:
            left = (await session.exec(select(ProviderCall.at))).all()
        assert sorted(left) == [1100.0, 1125.0]
        await db.close()

    asyncio.run(scenario())
