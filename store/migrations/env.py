"""Alembic's entry point for every command. ``store/schema.py`` hands it a connection
already in its transaction (and holding its lock); the command line (``python -m
store.migrations``) gets the URL and connects here."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection, String, pool
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from store import tables  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Revisions name SQLAlchemy's own types, not SQLModel's decorators (the same DDL): a
    revision is a record of the schema, not of the model classes of its day."""
    if type_ == "type" and isinstance(obj, AutoString):
        length = obj.impl.length if isinstance(obj.impl, String) else None
        return f"sa.String(length={length})" if length else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def options(dialect: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_as_batch": dialect == "sqlite",  # SQLite alters most tables by copying them
        "render_item": render_item,
        "compare_type": True,
    }


def run(connection: Connection) -> None:
    context.configure(connection=connection, **options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def run_on_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


def main() -> None:
    url = config.attributes.get("database_url")
    connection = config.attributes.get("connection")
    if context.is_offline_mode():  # --sql: print the DDL instead of running it
        dialect = str(url).split(":", 1)[0].split("+", 1)[0]
        context.configure(url=url, literal_binds=True, **options(dialect))
        with context.begin_transaction():
            context.run_migrations()
    elif connection is not None:
        run(connection)
    else:
        asyncio.run(run_on_url(str(url)))


main()
