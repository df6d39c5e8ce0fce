"""One settings object for every Tolk process.

Precedence: built-in defaults < ``temporal-dev.yaml`` < environment variables ``TOLK_*``.
The YAML file is nested by section (``api: {port: 8000}``); each key becomes the flat field
``<section>_<key>`` (``api_port``), which is also the environment variable name after the
``TOLK_`` prefix (``TOLK_API_PORT``).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

import contract
from localization.dispatch import BatchLimits
from workflows.messages import JobOptions, ReconcileInput, WebhookOptions
from workflows.review import SA_JOB_STATUS

if TYPE_CHECKING:
    from api.console.sessions import ConsoleOptions
    from api.progress.hub import HubOptions
    from api.schemas import RequestLimits

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "temporal-dev.yaml"


def _flatten_sections(raw: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, value in raw.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                flat[f"{section}_{key}"] = inner
        else:
            flat[section] = value
    return flat


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by TOLK_CONFIG (default: temporal-dev.yaml)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("TOLK_CONFIG", DEFAULT_CONFIG_FILE))
        if not path.exists():
            return {}
        raw = yaml.safe_load(path.read_text()) or {}
        flat = _flatten_sections(raw)
        return {k: v for k, v in flat.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLK_", extra="ignore")

    # Temporal
    temporal_host: str = "127.0.0.1"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_address: str | None = None  # host:port of a cluster; default host:port above
    temporal_namespace: str = "tolk"
    temporal_db_file: str = "var/temporal.db"
    temporal_sqlite_pragmas: dict[str, str] = Field(default_factory=dict)
    temporal_search_attributes: dict[str, str] = Field(default_factory=dict)
    # Dynamic config of the dev server (`--dynamic-config-value KEY=VALUE`); a cluster sets
    # its own. Task-queue fairness needs matching.useNewMatcher and matching.enableFairness.
    temporal_dynamic_config: dict[str, str | bool | int | float] = Field(default_factory=dict)
    # Give each organization's groups its own fairness key (its id), so Temporal dispatches
    # the tasks of organizations in turn, not first come first served (DESIGN, "Fair,
    # bounded work"). Off: one queue for all, in order of arrival.
    temporal_fairness: bool = True
    temporal_api_key: str | None = None
    temporal_tls: bool | None = None  # None: the SDK decides (TLS when an API key is set)
    # mTLS to a self-hosted cluster or Temporal Cloud (connections.tls_config): PEM files
    # of the client certificate and its key, the CA that signed the server's certificate
    # (default: the system's), and the name that certificate carries when it is not the
    # host dialled (sent as SNI too). Any of them set turns TLS on.
    temporal_tls_cert_file: str | None = None
    temporal_tls_key_file: str | None = None
    temporal_tls_ca_file: str | None = None
    temporal_tls_server_name: str | None = None
    # While Temporal does not answer, a process tries again after 0.5 s, then doubling up
    # to this many seconds between attempts, for as long as it takes.
    temporal_connect_retry_max_seconds: float = Field(default=10.0, gt=0)

    worker_task_queue: str = "tolk"
    # Worker processes `tolk dev` starts. Workflow code is Python, bound by the GIL: more
    # throughput comes from more processes, not threads.
    worker_processes: int = 1
    # On SIGTERM a worker stops taking work and lets running activities finish this long.
    worker_graceful_shutdown_seconds: float = 30.0
    # Activities one worker process runs at once. Translation is CPU-bound Python, so more
    # than a few per core only adds latency; scale with more worker processes instead.
    worker_max_concurrent_activities: int = 16
    # Workflow tasks one worker process takes at once. Python runs them one at a time, so
    # more only queues them inside the worker, where task-queue priority cannot reorder
    # them; kept few, the backlog waits at the server and a group's task goes first.
    worker_max_concurrent_workflow_tasks: int = Field(default=4, ge=2)  # Temporal needs 2+
    # host:port of the worker's Prometheus endpoint (/metrics: the Temporal SDK's metrics
    # and tolk_activity_failures_total). Empty: none. One address per worker process.
    worker_metrics_address: str = ""

    # Traces (docs/operations.md, "Traces"): the OTLP/HTTP collector's base URL (spans go
    # to <url>/v1/traces). Empty: the standard OTEL_EXPORTER_OTLP_ENDPOINT if set, else no
    # tracing at all. The service name defaults to tolk-api / tolk-worker per process
    # (OTEL_SERVICE_NAME wins over both).
    telemetry_otlp_endpoint: str = ""
    telemetry_service_name: str = ""
    # Log lines as plain text, or one JSON object per line with the group, job and trace
    # ids when known (docs/operations.md, "Logs"). Every process: TOLK_LOG_FORMAT.
    log_format: Literal["text", "json"] = "text"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # On SIGTERM the API stops accepting connections and gives open requests and streams
    # this long to end before it closes them.
    api_graceful_shutdown_seconds: int = Field(default=10, ge=0)

    database_url: str = "sqlite+aiosqlite:///var/tolk.db"
    # The same as temporal_connect_retry_max_seconds, for the database.
    database_connect_retry_max_seconds: float = Field(default=10.0, gt=0)

    limits_max_body_bytes: int = 5 * 1024 * 1024
    limits_max_strings: int = 20_000
    limits_max_string_chars: int = 100_000
    limits_max_depth: int = 32
    limits_max_targets: int = 100

    # Per-organization quotas (API.md, "Quotas, budgets and usage"): the server-wide
    # defaults, which `tolk orgs limits ORG ...` overrides for one organization (its row in
    # the orglimits table). None: no limit. Budgets count calendar months in UTC.
    quotas_requests_per_minute: int | None = Field(default=1200, ge=0)
    quotas_active_groups: int | None = Field(default=200, ge=0)
    quotas_monthly_budget_usd: float | None = Field(default=None, ge=0)
    quotas_monthly_tokens: int | None = Field(default=None, ge=0)

    # How long a finished group's workflow stays open, once its job workflows have closed
    # (their webhooks delivered or given up), before it completes. A retry or an
    # idempotent replay works at any age anyway (the database has the group; a retry starts
    # a new run), so this only keeps it answering `temporal workflow signal` a while.
    groups_linger_seconds: int = Field(default=0, ge=0)

    # The reconciler (workflows/reconciler.py): a pass this often, and at every API and
    # worker start. An accepted group whose workflow is missing this long after its
    # creation is started by it.
    reconcile_interval_seconds: float = Field(default=10.0, gt=0)
    reconcile_grace_seconds: float = Field(default=5.0, ge=0)
    # ... and only groups younger than this (older ones need an operator's decision:
    # `tolk groups retry`, or a replay of the request).
    reconcile_max_age_seconds: float = Field(default=24 * 3600, gt=0)

    # Progress hub: database change checks every min; safety polls back off to the max.
    progress_poll_min_seconds: float = 0.1
    progress_poll_max_seconds: float = 30.0
    progress_query_timeout_seconds: float = 0.5
    # All pollers of one API process together stay under this many polls per second: with
    # many watched groups each polls less often (interval >= groups / budget).
    progress_query_budget_per_second: float = 50.0
    # WebSocket pings (and SSE keep-alive comments) this often; a WebSocket client that has
    # not answered a ping within ping_timeout_seconds is dropped.
    progress_ping_seconds: float = Field(default=20.0, gt=0)
    progress_ping_timeout_seconds: float = Field(default=20.0, gt=0)

    # Translate activity retry policy.
    translate_max_attempts: int = 5
    translate_initial_interval_seconds: float = 1.0
    translate_timeout_seconds: float = 600.0
    # A translate attempt on a worker that died is retried elsewhere after this long.
    translate_heartbeat_seconds: float = 10.0

    # humanReview without timeoutSeconds / onTimeout of its own: wait two days, then
    # finish with the output as it is (and a review_timed_out warning).
    review_timeout_seconds: int = Field(
        default=172800, ge=1, le=contract.REVIEW_TIMEOUT_MAX_SECONDS
    )
    review_on_timeout: Literal["continue", "fail"] = "continue"  # contract.ON_TIMEOUT

    # Webhook delivery (API contract, section Webhooks). The delays are waited between
    # attempts of one event; shorten them for tests or staging, never by editing code.
    webhooks_timeout_seconds: float = contract.WEBHOOK_TIMEOUT_SECONDS
    webhooks_retry_delays_seconds: list[float] = Field(
        default_factory=lambda: list(contract.WEBHOOK_DELAYS_SECONDS)
    )
    # A Retry-After longer than this is cut down to it (a receiver cannot park an event).
    webhooks_max_retry_after_seconds: float = 36000.0
    # Outputs larger than this go out as a signed, expiring dataUrl instead of inline data.
    webhooks_inline_limit_bytes: int = 256 * 1024
    webhooks_data_url_ttl_seconds: int = 7 * 24 * 3600
    webhooks_secret_overlap_seconds: int = 24 * 3600
    # Hosts (names) or networks (CIDR) callbacks may reach despite the SSRF rules, for
    # self-hosted receivers and local development. Empty by default.
    webhooks_allowed_hosts: list[str] = Field(default_factory=list)
    # Extra CA certificates (PEM file) trusted for receivers, beside the system's.
    webhooks_ca_file: str | None = None
    # Where receivers fetch a dataUrl: this API's public base URL.
    # Default: http://<api.host>:<api.port>.
    api_public_url: str | None = None

    # LLM providers (section Engines of the design). ``llm.providers`` names the providers
    # this server offers besides the built-in ``pseudo``: each entry is
    # ``{type: openai|anthropic, base_url, api_key}`` (``api_key_env`` names an environment
    # variable to read the key from instead). ``openai`` and ``anthropic`` are added
    # automatically when OPENAI_API_KEY / ANTHROPIC_API_KEY (or TOLK_LLM_OPENAI_API_KEY /
    # TOLK_LLM_ANTHROPIC_API_KEY) are set.
    llm_providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    llm_openai_api_key: str | None = None
    llm_openai_base_url: str = "https://api.openai.com/v1"
    llm_anthropic_api_key: str | None = None
    llm_anthropic_base_url: str = "https://api.anthropic.com"
    # One provider call may take this long (connect + answer) before it counts as failed.
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    # Estimated input tokens per provider call: strings are packed into batches this big.
    llm_batch_tokens: int = Field(default=3000, ge=1)
    llm_batch_max_items: int = Field(default=200, ge=1)
    # Calls to one model for one batch before falling back to the next model (timeouts,
    # 5xx, 429, malformed answers).
    llm_attempts_per_model: int = Field(default=3, ge=1)
    # A 429 asking to wait longer than this falls back to the next model at once.
    llm_max_retry_after_seconds: float = 60.0
    # Rounds that re-send only the strings whose answer was missing or broken.
    llm_repair_rounds: int = Field(default=2, ge=0)
    # Batches of one document sent at once (a big document is not sent one call at a time).
    llm_concurrency: int = Field(default=4, ge=1)
    # Prices in USD per million tokens, by "provider/model", for POST /process/estimate.
    llm_prices: dict[str, dict[str, float]] = Field(default_factory=dict)

    # The review console (API.md, "Review console"): how long a sign-in lasts, how long the
    # read token of a live progress bar lasts, how many groups one page lists.
    console_session_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    console_stream_token_ttl_seconds: int = Field(default=15 * 60, ge=60, le=3600)
    console_page_size: int = Field(default=25, ge=1, le=100)

    # Keyed hashes (idempotent group ids) and signed tokens. When unset, a random key is
    # created once in var/secret.key so every process of one install shares it.
    secret_key: str | None = None
    var_dir: str = "var"

    @property
    def public_url(self) -> str:
        return self.api_public_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{self.temporal_host}:{self.temporal_port}"

    def resolved_secret_key(self) -> bytes:
        if self.secret_key:
            return self.secret_key.encode()
        path = Path(self.var_dir) / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(secrets.token_urlsafe(32))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # atomic create-if-absent: racing processes agree
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


# --- the options objects, one function each: the settings are their only defaults ---------


def webhook_options(settings: Settings) -> WebhookOptions:
    """The delivery schedule of a job's webhook event and of its redeliveries."""
    return WebhookOptions(
        delays_seconds=list(settings.webhooks_retry_delays_seconds),
        timeout_seconds=settings.webhooks_timeout_seconds,
    )


def quota_defaults(settings: Settings) -> dict[str, Any]:
    """The server's default quotas by wire name (``contract.QUOTAS``)."""
    return {
        contract.REQUESTS_PER_MINUTE: settings.quotas_requests_per_minute,
        contract.ACTIVE_GROUPS: settings.quotas_active_groups,
        contract.MONTHLY_BUDGET_USD: settings.quotas_monthly_budget_usd,
        contract.MONTHLY_TOKENS: settings.quotas_monthly_tokens,
    }


def job_options(settings: Settings) -> JobOptions:
    """The options a group's workflow is started with, passed on to its job workflows."""
    return JobOptions(
        translate_max_attempts=settings.translate_max_attempts,
        translate_initial_interval_seconds=settings.translate_initial_interval_seconds,
        translate_timeout_seconds=settings.translate_timeout_seconds,
        translate_heartbeat_seconds=settings.translate_heartbeat_seconds,
        linger_seconds=settings.groups_linger_seconds,
        search_attributes=bool(settings.temporal_search_attributes),
        job_status_attribute=SA_JOB_STATUS.name in settings.temporal_search_attributes,
        webhook=webhook_options(settings),
        review_timeout_seconds=settings.review_timeout_seconds,
        review_on_timeout=settings.review_on_timeout,
    )


def hub_options(settings: Settings) -> HubOptions:
    """The progress hub's timings, from the ``progress`` section. (The hub is imported
    here, not at the top: every process reads settings, only the API runs a hub.)"""
    from api.progress.hub import HubOptions

    return HubOptions(
        poll_min_seconds=settings.progress_poll_min_seconds,
        poll_max_seconds=settings.progress_poll_max_seconds,
        query_timeout_seconds=settings.progress_query_timeout_seconds,
        query_budget_per_second=settings.progress_query_budget_per_second,
    )


def reconcile_options(settings: Settings) -> ReconcileInput:
    """The reconciler workflow's pace, from the ``reconcile`` section."""
    return ReconcileInput(
        interval_seconds=settings.reconcile_interval_seconds,
        grace_seconds=settings.reconcile_grace_seconds,
    )


def batch_limits(settings: Settings) -> BatchLimits:
    """How a document is sent to its providers, from the ``llm`` section."""
    return BatchLimits(
        batch_tokens=settings.llm_batch_tokens,
        batch_max_items=settings.llm_batch_max_items,
        attempts_per_model=settings.llm_attempts_per_model,
        max_retry_after=settings.llm_max_retry_after_seconds,
        repair_rounds=settings.llm_repair_rounds,
        concurrency=settings.llm_concurrency,
    )


def request_limits(settings: Settings) -> RequestLimits:
    """What one request may hold, from the ``limits`` section. (Imported here, not at the
    top, for the reason ``hub_options`` gives.)"""
    from api.schemas import RequestLimits

    return RequestLimits(
        max_strings=settings.limits_max_strings,
        max_string_chars=settings.limits_max_string_chars,
        max_depth=settings.limits_max_depth,
        max_targets=settings.limits_max_targets,
    )


def console_options(settings: Settings) -> ConsoleOptions:
    """The review console's sessions and pages, from the ``console`` section. (Imported
    here, not at the top, for the reason ``hub_options`` gives.)"""
    from api.console.sessions import ConsoleOptions

    return ConsoleOptions(
        session_ttl_seconds=settings.console_session_ttl_seconds,
        stream_token_ttl_seconds=settings.console_stream_token_ttl_seconds,
        page_size=settings.console_page_size,
    )
