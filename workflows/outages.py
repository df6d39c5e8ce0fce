"""An activity whose last attempt failed because the database was away is run again, for as
long as the outage lasts: its retry policy's attempts are for the work's own failures (a
provider down, a receiver refusing), and a database outage of any length must only delay
work, never fail it. (Earlier attempts that failed on the database do count.)

The activities raise ``DatabaseUnavailable`` for it (activities/failures.py); the
workflows wait between rounds, longer each time, up to a minute.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.messages import DATABASE_UNAVAILABLE

# Workflow change marker: before it, such a failure used up the activity's attempts.
WAIT_OUT_DATABASE = "wait-out-database"


def database_unavailable(err: ActivityError) -> bool:
    """Whether the activity's last attempt failed on the database (and the workflow is new
    enough to wait it out)."""
    cause = err.cause
    return (
        isinstance(cause, ApplicationError)
        and cause.type == DATABASE_UNAVAILABLE
        and workflow.patched(WAIT_OUT_DATABASE)
    )


async def wait_for_database(rounds: int, what: str) -> None:
    """The pause before round ``rounds`` + 1 of ``what``."""
    seconds = min(60, 2 ** min(rounds, 6))
    workflow.logger.warning("database unavailable for %s; trying again in %d s", what, seconds)
    await workflow.sleep(timedelta(seconds=seconds), summary="database unavailable")
