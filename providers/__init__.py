"""Translation providers configured on this server: ``pseudo`` always, LLM providers from
settings (``llm.providers``, ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``)."""

from __future__ import annotations

import os
from typing import Any

from localization.batch import Provider
from providers.anthropic import AnthropicProvider
from providers.openai import OpenAIProvider
from providers.pseudo import PseudoProvider

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
        if config.get("api_key_env"):
            config["api_key"] = os.environ.get(config["api_key_env"], "")
        configs[name] = config
    return configs


def build_providers(settings: Any) -> dict[str, Provider]:
    providers: dict[str, Provider] = {"pseudo": PseudoProvider()}
    for name, config in provider_configs(settings).items():
        if name == "pseudo":
            raise ProviderConfigError("llm.providers: 'pseudo' is built in and cannot be replaced")
        config.setdefault("timeout_seconds", settings.llm_timeout_seconds)
        providers[name] = KINDS[config["type"]](name, config)
    return providers


async def close_providers(providers: dict[str, Provider]) -> None:
    for provider in providers.values():
        close = getattr(provider, "close", None)
        if close is not None:
            await close()
