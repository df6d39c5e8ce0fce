"""``tolk``: run the stack or its parts, administer organizations and keys, sync files.

tolk dev                         Temporal dev server + UI, worker and API (make run)
tolk worker                      the Temporal worker
tolk api                         the HTTP API under uvicorn
tolk orgs create NAME [--json]   prints the new organization id
tolk keys create --org ORG_ID [--email EMAIL] [--json]   prints the new API key
tolk keys list [--org ORG_ID] [--json]   lists keys: id, organization, email, dates
tolk keys revoke KEY_ID [--json]  revokes a key (its id, tolk_xxxxxxxx, or the whole key)
tolk engines create --org ORG_ID --name NAME [--models JSON] [--default] [--json]
tolk groups retry|cancel GROUP_ID [--json]   retry or cancel a group, at any age
tolk groups reconcile [--max-age SECONDS] [--json]   one reconciler pass now
tolk db upgrade|current [--json]   upgrade the schema to the newest revision, or print it
tolk temporal setup [--json]     namespace and search attributes on a cluster (idempotent)
tolk init|push|watch|pull|status|jobs    the file client (``cli/files.py``)

Errors: a usage or configuration error prints one line and exits 2; a command that could
not do its work prints one line and exits 1 (``cli/output.py``). An unexpected exception
prints one line too (its traceback with ``TOLK_DEBUG=1``), except in the long-running
``dev``, ``worker`` and ``api``, whose logs keep the traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from pydantic import ValidationError

from cli import admin, database, files, groups, output, run, temporal
from cli import limits as _limits  # noqa: F401  (adds `tolk orgs limits` to admin.orgs)

# Long-running processes: an unexpected exception keeps its traceback for their logs.
SERVICES = ("dev", "worker", "api")

app = typer.Typer(
    name="tolk",
    help="Durable async localization.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("dev", help="run the whole local stack")(run.dev)
app.command("worker", help="run a Temporal worker")(run.worker)
app.command("api", help="run the HTTP API")(run.api)
app.add_typer(admin.orgs, name="orgs")
app.add_typer(admin.keys, name="keys")
app.add_typer(admin.engines, name="engines")
app.add_typer(groups.app, name="groups")
app.add_typer(database.app, name="db")
app.add_typer(temporal.app, name="temporal")
files.register(app)


def _bad_settings(err: ValidationError) -> str:
    """One line naming each setting that does not validate, by its environment variable."""
    problems = []
    for error in err.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        problems.append(f"TOLK_{field.upper()}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)


def run_app(args: list[str]) -> int:
    """Run one ``tolk`` command line; its exit status."""
    try:
        code = app(args=args, prog_name="tolk", standalone_mode=False)
    except typer.TyperException as err:  # typer's (vendored) click errors derive from it
        message = err.format_message()
        if type(err).__name__ == "NoArgsIsHelpError":  # `tolk`, `tolk keys`: help was shown
            if message:
                print(message, file=sys.stderr)
            return err.exit_code
        ctx = getattr(err, "ctx", None)  # a usage error: name the command
        if ctx is not None:
            message = f"{ctx.command_path}: {message} (see {ctx.command_path} --help)"
        output.fail(message, err.exit_code)
    except typer.Abort:
        output.fail("aborted", 1)
    except ValidationError as err:
        if err.title != "Settings":
            raise
        output.fail(_bad_settings(err))
    except Exception as err:
        # The root group has no options that run a command: args[0] names the command.
        service = bool(args) and args[0] in SERVICES
        if service or os.environ.get("TOLK_DEBUG") == "1":
            raise
        output.fail(f"tolk: {type(err).__name__}: {err} (TOLK_DEBUG=1 shows the traceback)", 1)
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.exit(run_app(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
