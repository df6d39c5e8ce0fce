"""What an activity's unexpected failure looks like from outside: one rule for them all.

Activities raise ``ApplicationError`` on purpose, with messages of codes, counts and ids.
Anything else (a bug, an unreachable database) would reach workflow history with its own
message, which may quote user content (a ``KeyError`` names a key of the document). This
interceptor turns such an exception into an ``ApplicationError`` that names only its
class, logs the original with the workflow and activity ids, counts it, and bounds it:

- the database unreachable (or locked): retried for as long as the outage lasts, since
  "wait out an outage of any length" is the rule; logged as an error from the third
  attempt on, so a long outage shows in the logs and metrics;
- anything else: retried ``DEFECT_ATTEMPTS`` times, then not retryable, so that a defect
  fails its job loudly instead of looping for ever.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from store.db import unavailable
from workflows.messages import DATABASE_UNAVAILABLE

log = logging.getLogger("tolk.activities")

DEFECT_ATTEMPTS = 5
LOUD_FROM_ATTEMPT = 3
UNEXPECTED = "UnexpectedError"


class SafeFailures(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except (ApplicationError, CancelledError):
            raise
        except Exception as err:
            raise _failure(err) from None


def _count(kind: str) -> None:
    """``tolk_activity_failures_total{activity, kind}`` on the worker's metrics endpoint."""
    activity.metric_meter().create_counter(
        "tolk_activity_failures", "Activity attempts that failed unexpectedly, by kind"
    ).add(1, {"activity": activity.info().activity_type, "kind": kind})


def _failure(err: Exception) -> ApplicationError:
    info = activity.info()
    where = (
        f"{info.activity_type} of {info.workflow_type} {info.workflow_id} (attempt {info.attempt})"
    )
    if unavailable(err):
        _count("database_unavailable")
        level = logging.ERROR if info.attempt >= LOUD_FROM_ATTEMPT else logging.WARNING
        log.log(level, "database unavailable in %s: %s", where, err)
        return ApplicationError(
            f"database unavailable ({type(err).__name__}); retrying", type=DATABASE_UNAVAILABLE
        )
    final = info.attempt >= DEFECT_ATTEMPTS
    _count("unexpected")
    log.error("unexpected error in %s%s", where, "; giving up" if final else "", exc_info=err)
    return ApplicationError(
        f"unexpected {type(err).__name__} (see the worker log)",
        type=UNEXPECTED,
        non_retryable=final,
    )
