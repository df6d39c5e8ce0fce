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

from workflows.messages import DATABASE_UNAVAILABLE, PROVIDER_BUSY

# Workflow change markers: before them, such failures used up the activity's attempts.
WAIT_OUT_DATABASE = "wait-out-database"
WAIT_FOR_PROVIDER = "wait-for-provider-capacity"
# The longest single wait for a provider's capacity (its window is 60 s).
PROVIDER_WAIT_MAX_SECONDS = 60.0


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


def provider_busy(err: ActivityError) -> float | None:
    """The seconds to wait when the activity's attempt found no place at a provider's
    shared rate limit (``ProviderBusy``, activities/engine_activities.py), else None. The
    workflow sleeps (no worker held, no attempt used up) and runs the activity again."""
    cause = err.cause
    if not (isinstance(cause, ApplicationError) and cause.type == PROVIDER_BUSY):
        return None
    if not workflow.patched(WAIT_FOR_PROVIDER):
        return None
    details = cause.details
    seconds = float(details[0]) if details and isinstance(details[0], (int, float)) else 1.0
    return min(PROVIDER_WAIT_MAX_SECONDS, max(0.1, seconds))
