"""Reviews, console sessions, quotas, provider limits and spend

Everything the tables gained after the last release without migrations: reviews, console
sessions, quotas and the request rate, provider limits, the spend ledger, a group's
pipeline, a job's draft and the index on a job's organization and status.

A database made by ``create_all`` between that release and this revision has some of these
already (``store/schema.py`` stamps it at 0001): this revision adds only what is missing.
Revisions after it are written as usual.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _inspector() -> sa.Inspector | None:
    """The database as it is; None when printing SQL (``--sql``): then nothing exists yet."""
    return None if op.get_context().as_sql else sa.inspect(op.get_bind())


def _create_table(name: str, *elements: Any) -> bool:
    """Create the table unless it exists; whether it was created."""
    found = _inspector()
    if found is not None and found.has_table(name):
        return False
    op.create_table(name, *elements)
    return True


def _columns(table: str) -> set[str]:
    found = _inspector()
    return set() if found is None else {column["name"] for column in found.get_columns(table)}


def _indexes(table: str) -> set[str]:
    found = _inspector()
    return set() if found is None else {str(index["name"]) for index in found.get_indexes(table)}


def upgrade() -> None:
    _create_table(
        "orglimits",
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("organization_id"),
    )
    if _create_table(
        "review",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("comment", sa.String(), nullable=True),
        sa.Column("data_ref", sa.String(), nullable=True),
        sa.Column("reviewer", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    ):
        op.create_index("ix_review_job", "review", ["job_id", "round"], unique=False)
    if _create_table(
        "consolesession",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("api_key_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["apikey.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
    ):
        op.create_index(
            op.f("ix_consolesession_expires_at"), "consolesession", ["expires_at"], unique=False
        )
        op.create_index(
            op.f("ix_consolesession_organization_id"),
            "consolesession",
            ["organization_id"],
            unique=False,
        )
    _create_table(
        "ratewindow",
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "window"),
    )
    if _create_table(
        "providercall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    ):
        op.create_index(
            "ix_providercall_provider_at", "providercall", ["provider", "at"], unique=False
        )
    if _create_table(
        "spendentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("engine_id", sa.String(length=64), nullable=False),
        sa.Column("target_locale", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    ):
        op.create_index("ix_spendentry_group", "spendentry", ["group_id"], unique=False)
        op.create_index(
            "ix_spendentry_org_created",
            "spendentry",
            ["organization_id", "created_at"],
            unique=False,
        )
    _create_table(
        "groupspendlimit",
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("max_cost_usd", sa.Float(), nullable=True),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id"),
    )
    if "pipeline" not in _columns("jobgroup"):
        with op.batch_alter_table("jobgroup") as batch:
            batch.add_column(sa.Column("pipeline", sa.JSON(), nullable=True))
    if "draft_ref" not in _columns("job"):
        with op.batch_alter_table("job") as batch:
            batch.add_column(sa.Column("draft_ref", sa.String(), nullable=True))
    if "ix_job_org_status" not in _indexes("job"):
        op.create_index("ix_job_org_status", "job", ["organization_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_job_org_status", table_name="job")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("draft_ref")
    with op.batch_alter_table("jobgroup") as batch:
        batch.drop_column("pipeline")
    for table in (
        "groupspendlimit",
        "spendentry",
        "providercall",
        "ratewindow",
        "consolesession",
        "review",
        "orglimits",
    ):
        op.drop_table(table)
