"""``python -m store.migrations COMMAND``: Alembic's command line on Tolk's configuration,
against ``TOLK_DATABASE_URL``. A new revision, on a database at the current head::

    python -m store.migrations revision --autogenerate --rev-id 0003 -m "what changed"
"""

from __future__ import annotations

import sys

from alembic.config import CommandLine

from settings import get_settings
from store.migrations import config


def main(argv: list[str] | None = None) -> None:
    cli = CommandLine(prog="python -m store.migrations")
    options = cli.parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(config(get_settings().database_url), options)


if __name__ == "__main__":
    main()
