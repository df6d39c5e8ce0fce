"""Translation providers configured on this server: ``pseudo`` always, LLM providers from
settings (``llm.providers``, ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``)."""

from __future__ import annotations

import os
from typing import Any

from localization.batch import Provider
from providers.anthropic import AnthropicProvider
from providers.http import HttpProvider
from providers.limits import LIMIT_KEYS, CallLog, Limiter, RateLimits
from providers.openai import OpenAIProvider
from providers.pseudo import PseudoProvider
from store.db import Database

KINDS: dict[str, type[OpenAIProvider] | type[AnthropicProvider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
}


class ProviderConfigError(ValueError):
    pass


def provider_configs(settings: Any) -> dict[str, dict[str, Any]]:
    """Every configured LLM provider by name, with defaults filled in."""
    configs: dict[str, dict[str, Any]] = {}
    for kind in KINDS:  # openai, anthropic: on their own when their usual key is set
        key = getattr(settings, f"llm_{kind}_api_key") or os.environ.get(f"{kind.upper()}_API_KEY")
        if key:
            base_url = getattr(settings, f"llm_{kind}_base_url")
            configs[kind] = {"type": kind, "base_url": base_url, "api_key": key}
    for name, raw in settings.llm_providers.items():
        config = {**configs.get(name, {}), **raw}
        config.setdefault("type", name)
        if config["type"] not in KINDS:
            raise ProviderConfigError(
                f"llm.providers.{name}: type must be one of {', '.join(KINDS)}"
            )
        if not config.get("base_url"):
            raise ProviderConfigError(f"llm.providers.{name}: base_url is required")
        for key in LIMIT_KEYS:
            value = config.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ProviderConfigError(
                    f"llm.providers.{name}: {key} must be a positive integer, not {value!r}"
                )
        if config.get("api_key_env"):
            config["api_key"] = os.environ.get(config["api_key_env"], "")
        configs[name] = config
    return configs


def rate_limits(config: dict[str, Any]) -> RateLimits:
    return RateLimits(
        requests_per_minute=config.get("requests_per_minute"),
        tokens_per_minute=config.get("tokens_per_minute"),
    )


def build_providers(settings: Any, db: Database | None = None) -> dict[str, Provider]:
    """The providers, those with rate limits sharing their calls' log in ``db`` (when None,
    a connection of their own to ``settings.database_url``, closed by close_providers)."""
    providers: dict[str, Provider] = {"pseudo": PseudoProvider()}
    owned: Database | None = None
    for name, config in provider_configs(settings).items():
        if name == "pseudo":
            raise ProviderConfigError("llm.providers: 'pseudo' is built in and cannot be replaced")
        config.setdefault("timeout_seconds", settings.llm_timeout_seconds)
        provider = KINDS[config["type"]](name, config)
        limits = rate_limits(config)
        if limits.any:
            if db is None and owned is None:
                owned = Database(settings.database_url)
            shared = db or owned
            assert shared is not None
            provider.limiter = Limiter(
                CallLog(shared, name, limits), provider.timeout, owns_db=db is None
            )
        providers[name] = provider
    return providers


async def close_providers(providers: dict[str, Provider]) -> None:
    for provider in providers.values():
        close = getattr(provider, "close", None)
        if close is not None:
            await close()
    # The limiters' own connection (build_providers without a database), closed once.
    owned = {
        id(p.limiter.calls.db): p.limiter.calls.db
        for p in providers.values()
        if isinstance(p, HttpProvider) and p.limiter is not None and p.limiter.owns_db
    }
    for db in owned.values():
        await db.close()
