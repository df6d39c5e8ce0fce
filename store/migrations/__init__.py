"""The schema's revisions (Alembic), configured here in code: ``store/schema.py`` runs them
for every process, ``python -m store.migrations`` is Alembic's own command line on the
same configuration (``revision --autogenerate``, ``history``, ``check``...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config

HERE = Path(__file__).resolve().parent


def config(database_url: str | None = None, **attributes: Any) -> Config:
    """Alembic's configuration: the scripts beside this file, the database by URL. The URL
    and an open connection travel as attributes, not ini options (a password's ``%`` would
    be read as interpolation)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    # A new revision comes out formatted as the project's code (ruff, a dev dependency).
    for option, value in {
        "hooks": "ruff",
        "ruff.type": "module",
        "ruff.module": "ruff",
        "ruff.options": "format REVISION_SCRIPT_FILENAME",
    }.items():
        cfg.set_section_option("post_write_hooks", option, value)
    cfg.attributes["database_url"] = database_url
    cfg.attributes.update(attributes)
    return cfg
