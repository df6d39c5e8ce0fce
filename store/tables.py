"""Tables. SQLite by default, PostgreSQL by URL; JSON columns hold small structured fields.

User content (source documents and translated outputs) lives only in ``Blob`` rows and
travels through Temporal as a reference (the blob's hash).

A change to a table (a table, column or index added, changed or dropped) comes with a new
revision in ``store/migrations/versions/`` (docs/operations.md, "Schema migrations"):
tests/test_migrations.py fails while the models and the revisions differ.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

import contract


def utcnow() -> datetime:
    return datetime.now(UTC)


class Organization(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    created_at: datetime = Field(default_factory=utcnow)


class OrgLimits(SQLModel, table=True):
    """An organization's own quotas, where they differ from the server's (``settings.py``,
    ``quotas_*``): ``limits`` maps a quota's wire name (``contract.QUOTAS``) to its value,
    null for no limit; a quota left out is the server's."""

    organization_id: str = Field(foreign_key="organization.id", primary_key=True)
    limits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    id: str = Field(primary_key=True)  # the key's visible prefix, e.g. "tolk_ab12cd34"
    organization_id: str = Field(foreign_key="organization.id", index=True)
    key_hash: str
    email: str
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Engine(SQLModel, table=True):
    id: str = Field(primary_key=True)
    organization_id: str = Field(foreign_key="organization.id", index=True)
    name: str
    description: str = ""
    is_default: bool = False
    provider: str = "pseudo"
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Blob(SQLModel, table=True):
    """Content-addressed JSON document, scoped to one organization."""

    organization_id: str = Field(primary_key=True)
    sha256: str = Field(primary_key=True)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    created_at: datetime = Field(default_factory=utcnow)


class JobGroup(SQLModel, table=True):
    id: str = Field(primary_key=True)
    organization_id: str = Field(foreign_key="organization.id", index=True)
    engine_id: str
    source_locale: str
    target_locales: list[str] = Field(sa_column=Column(JSON, nullable=False))
    source_ref: str  # Blob.sha256 of the source data
    context: str | None = None
    hints: dict[str, list[str]] | None = Field(default=None, sa_column=Column(JSON))
    locked_keys: list[str] | None = Field(default=None, sa_column=Column(JSON))
    callback_url: str | None = None
    idempotency_key: str | None = None
    fingerprint: str  # hash of the normalised request, to detect idempotency-key reuse
    # The effective pipeline (contract.effective_pipeline, wire form) as accepted: the
    # engine's stages overridden by the request's, fixed for the group's whole life.
    # Null in rows from before pipelines existed (the same as no stage).
    pipeline: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # pending: accepted, its workflow not yet seen (the outbox; activities/reconcile.py);
    # processing: its workflow seen, or retried; then the terminal status the workflow
    # records. The live status shown to clients is derived from the jobs.
    status: str = contract.GROUP_PENDING
    # The workflow's event log (workflows/event_log.py), recorded with the terminal status so
    # closed groups stream from the database with the same event ids.
    event_log: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None


class Job(SQLModel, table=True):
    __table_args__ = (
        Index("ix_job_org_created", "organization_id", "created_at", "id"),
        # The active-groups limit counts an organization's unfinished jobs on every new
        # group (store/groups.py::active_groups): without it, a scan of all its jobs.
        Index("ix_job_org_status", "organization_id", "status"),
    )

    id: str = Field(primary_key=True)
    group_id: str = Field(foreign_key="jobgroup.id", index=True)
    organization_id: str = Field(index=True)
    engine_id: str
    source_locale: str
    target_locale: str
    status: str = contract.QUEUED
    output_ref: str | None = None
    # A job whose pipeline has stages after translate: the output so far, which each stage
    # replaces and the last step stores as ``output_ref`` (None once finished, or without).
    draft_ref: str | None = None
    error: str | None = None
    warnings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    usage: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None


class Review(SQLModel, table=True):
    """A person's decision on a job awaiting review (humanReview): stored before the job's
    workflow is told, which then gets only this row's id. The edited output is a blob
    (``data_ref``); a reject's comment is the next round's instruction."""

    __table_args__ = (Index("ix_review_job", "job_id", "round"),)

    id: str = Field(primary_key=True)
    job_id: str
    organization_id: str
    round: int
    action: str
    comment: str | None = None
    data_ref: str | None = None
    reviewer: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class WebhookConfig(SQLModel, table=True):
    """An organization's webhook settings. The signing secret is created the first time it
    is needed; after a rotation the previous secret keeps signing until ``previous_until``."""

    organization_id: str = Field(primary_key=True)
    default_url: str | None = None
    secret: str
    previous_secret: str | None = None
    previous_until: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One attempt to deliver one webhook event. An event (``event_id``, the ``webhook-id``
    header) is sent in series: series 1 when the job ends, one more per manual redelivery;
    each series retries on the webhook schedule."""

    __table_args__ = (Index("ix_delivery_job", "job_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str = Field(index=True)
    job_id: str
    event_id: str
    event_type: str
    url: str | None = None
    series: int = 1
    attempt: int = 1
    # delivered | retrying | failed (this series gave up) | skipped (nowhere to send) |
    # superseded (a retry of the job replaced this event before its next attempt)
    outcome: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class MemoryEntry(SQLModel, table=True):
    """Translation memory: one translated string. The key hashes everything that shaped
    the translation (engine plan, locales, context, hints, source text), so an entry is
    reused only where the same request would have produced it."""

    organization_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)  # sha256 hex
    text: str
    created_at: datetime = Field(default_factory=utcnow)


class ProcessUsage(SQLModel, table=True):
    """One answered ``POST /process/localize``: what it translated and spent, and what the
    client said about it (the lingo.dev CLI's trigger and file path, the SDK's session)."""

    __table_args__ = (Index("ix_processusage_org_created", "organization_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str
    created_at: datetime = Field(default_factory=utcnow)
    source_locale: str = Field(max_length=64)
    target_locale: str = Field(max_length=64)
    engine_id: str = Field(max_length=64)
    # None when nothing was translated.
    model: str | None = Field(default=None, max_length=contract.MODEL_LABEL_MAX)
    strings: int = 0
    memory_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    provider_calls: int = 0
    duration_ms: int = 0
    trigger_type: str | None = Field(default=None, max_length=64)
    file_path: str | None = Field(default=None, max_length=4_096)
    session_id: str | None = Field(default=None, max_length=255)


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser of the review console. The cookie carries the session's random
    id (signed); the row holds only its SHA-256, so the database cannot sign anyone in. The
    API key that opened it is named by id, never stored: deleting the row, revoking the key
    or reaching ``expires_at`` ends the session."""

    id: str = Field(primary_key=True)  # sha256 hex of the id the cookie carries
    organization_id: str = Field(foreign_key="organization.id", index=True)
    api_key_id: str = Field(foreign_key="apikey.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class RateWindow(SQLModel, table=True):
    """Requests an organization made in one minute of the clock (``window``: minutes since
    the epoch): the counts the request rate limit reads (``store/rate_limits.py``)."""

    organization_id: str = Field(primary_key=True)
    window: int = Field(primary_key=True)
    count: int = 0


class ProviderCall(SQLModel, table=True):
    """One call to a rate-limited provider (``requests_per_minute``/``tokens_per_minute``
    in ``llm.providers``), shared by every worker and API process: ``providers/limits.py``
    reserves a row before the call and moves ``at`` to the answer's time after it, so a
    call counts in the 60 s window from its reservation until 60 s after its answer.
    ``at`` is seconds since the epoch; ``tokens`` the estimate, then the real usage."""

    __table_args__ = (Index("ix_providercall_provider_at", "provider", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=200)
    at: float
    tokens: int = 0


class SpendEntry(SQLModel, table=True):
    """The spend ledger: one provider answer's tokens and price, written as the answer lands
    (not when its job ends), so every API and worker process sees the same spend and a
    budget stops the next batch. A job's answers carry its group and job ids; a ``POST
    /process/localize`` call's carry neither (``kind`` tells them apart)."""

    __table_args__ = (
        Index("ix_spendentry_org_created", "organization_id", "created_at"),
        Index("ix_spendentry_group", "group_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str
    kind: str = Field(max_length=16)  # "job" | "process"
    group_id: str | None = Field(default=None, max_length=64)
    job_id: str | None = Field(default=None, max_length=64)
    engine_id: str = Field(max_length=64)
    target_locale: str = Field(max_length=64)
    model: str = Field(max_length=contract.MODEL_LABEL_MAX)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0  # 0 for a model without a configured price
    created_at: datetime = Field(default_factory=utcnow)


class GroupSpendLimit(SQLModel, table=True):
    """A group's ``maxCostUsd`` (its cost fuse) and the estimate it was accepted with."""

    group_id: str = Field(primary_key=True)
    max_cost_usd: float | None = None
    estimated_cost_usd: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
