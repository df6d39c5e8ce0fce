"""Provider configuration and Retry-After parsing (pure; the wire formats are exercised
against the fake provider in test_llm.py)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from providers import ProviderConfigError, build_providers, provider_configs
from providers.http import retry_after
from settings import Settings


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
