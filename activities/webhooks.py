"""The webhook delivery activity: one attempt per call, recorded, signed, SSRF-checked.

Temporal runs the attempts (``workflows/webhooks.py``); each call here makes exactly one
HTTP POST, records it, and tells Temporal how long to wait before the next one
(``next_retry_delay``: the schedule's step, or longer when the receiver sent Retry-After).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

import contract
import telemetry
from activities import metrics
from settings import Settings
from store import deliveries, documents
from store.db import Database
from store.tables import Delivery, Job, JobGroup, WebhookConfig
from webhooks.links import output_url
from webhooks.signing import new_secret, signed_headers, signing_secrets
from webhooks.urls import AllowList, CallbackRefused, resolve_target
from workflows.messages import DELIVER_WEBHOOK, DeliverWebhookInput, FirstAttempt
from workflows.webhooks import WEBHOOK_GAVE_UP, WEBHOOK_GONE, WEBHOOK_REFUSED

USER_AGENT = "Tolk-Webhooks/1"
RETRY_LATER = "WebhookAttemptFailed"  # an attempt failed; the next is due after its delay
# How long the activity that stored a job waits for the first attempt of its webhook before
# it tells the group of the job's end by a signal (else the job workflow's completion does).
PROMPT_SECONDS = 1.0


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date), if it parses."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def event_body(
    job: Job, group: JobGroup, data: Any | None, data_url: str | None, event_type: str
) -> bytes:
    """The event as API.md specifies it: a job's terminal event, or its review request
    (no data: the reviewer fetches the job)."""
    common = {
        "jobId": job.id,
        "groupId": group.id,
        "sourceLocale": job.source_locale,
        "targetLocale": job.target_locale,
        "status": job.status,
    }
    event: dict[str, Any] = {"type": event_type, **common}
    if event_type == contract.TRANSLATION_REVIEW_REQUESTED:
        event["status"] = contract.AWAITING_REVIEW
    elif job.status == contract.FAILED:
        event["error"] = job.error
    else:
        event["warnings"] = job.warnings
        event |= {"dataUrl": data_url} if data_url is not None else {"data": data}
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookActivities:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.allow = AllowList.parse(settings.webhooks_allowed_hosts)
        tls = ssl.create_default_context()
        if settings.webhooks_ca_file:
            tls.load_verify_locations(settings.webhooks_ca_file)
        # No redirects (a 3xx is a failed attempt), no proxies from the environment (they
        # would connect somewhere other than the checked address).
        self.http = httpx.AsyncClient(verify=tls, follow_redirects=False, trust_env=False)
        self.secret_key = settings.resolved_secret_key()

    async def close(self) -> None:
        await self.http.aclose()

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver_webhook(self, delivery: DeliverWebhookInput) -> str:
        """One attempt. Returns the outcome when the series ends here (delivered or skipped);
        raises to have Temporal retry, or to end the series as failed. Attempts are counted
        from ``delivery.first_attempt`` (2 when the activity that stored the job made the
        first, ``first_attempt``)."""
        return await self._attempt(delivery, activity.info().attempt + delivery.first_attempt - 1)

    async def first_attempt(
        self, delivery: DeliverWebhookInput, tell_group: Callable[[], Awaitable[None]]
    ) -> FirstAttempt | None:
        """Attempt 1 of a job's terminal event, made by the activity that has just stored
        the job's end, so that a job whose receiver answers needs no activity of its own
        for it (and its workflow's history stays that much shorter: BENCHMARKS.md, "The
        cost of a job"). The group hears of the end from the job workflow's completion,
        which follows at once; ``tell_group`` is called (a signal) only when that
        completion will be late: the attempt takes longer than ``PROMPT_SECONDS``, or
        failed and more attempts will follow. None when the attempt could not be made
        (e.g. the database is away): the job's workflow then delivers from attempt 1."""
        attempt = asyncio.ensure_future(self._first_attempt(delivery))
        told = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(attempt), PROMPT_SECONDS)
            except TimeoutError:
                await tell_group()
                told = True
            first = await attempt
        finally:
            attempt.cancel()  # only if this activity is cancelled meanwhile
        if not told and (first is None or first.outcome == contract.RETRYING):
            await tell_group()
        return first

    async def _first_attempt(self, delivery: DeliverWebhookInput) -> FirstAttempt | None:
        try:
            outcome = await self._attempt(delivery, 1)
        except ApplicationError as err:
            if err.type == RETRY_LATER and err.next_retry_delay is not None:
                wait = err.next_retry_delay.total_seconds()
                # As the SDK logs a failed deliver_webhook attempt (no content: the status).
                activity.logger.warning("%s; the next in %.0f s", err.message, wait)
                return FirstAttempt(contract.RETRYING, wait)
            return FirstAttempt(contract.DELIVERY_FAILED)  # gone, refused: the series ends
        except Exception as err:  # not made, or not recorded: the workflow starts over
            activity.logger.warning("first webhook attempt of %s not made: %s", delivery, err)
            return None
        return FirstAttempt(outcome)

    async def _attempt(self, delivery: DeliverWebhookInput, attempt: int) -> str:
        delays = delivery.options.delays_seconds
        async with self.db.session() as session:
            job = await session.get(Job, delivery.job_id)
            group = await session.get(JobGroup, job.group_id) if job else None
            if job is None or group is None:
                raise ApplicationError("job no longer exists", type=WEBHOOK_GAVE_UP)
            config = await session.get(WebhookConfig, job.organization_id)
        if config is None:  # the organization's first event: create its secret
            async with self.db.writing() as session:
                config = await deliveries.webhook_config(session, job.organization_id, new_secret)
        url = group.callback_url or config.default_url
        event_type = delivery.event or contract.webhook_event(job.status)
        record = Delivery(
            organization_id=job.organization_id,
            job_id=job.id,
            event_id=delivery.event_id,
            event_type=event_type,
            url=url,
            series=delivery.series,
            attempt=attempt,
            outcome=contract.DELIVERED,
        )

        reportable = delivery.event is not None or job.status in contract.SUCCEEDED | {
            contract.FAILED
        }
        if url is None or not reportable:
            record.outcome = contract.SKIPPED
            record.error = (
                "no callbackUrl and no default webhook URL"
                if url is None
                else f"the job is {job.status}: nothing to deliver"
            )
            await self._record(record)
            return record.outcome

        started = time.monotonic()
        now = datetime.now(UTC)
        try:
            target = await resolve_target(url, self.allow)
        except CallbackRefused as err:
            record.outcome, record.error = contract.DELIVERY_FAILED, f"refused: {err}"
            await self._record(record)
            raise ApplicationError(
                "refused: the callback URL is not allowed (see the delivery log)",
                type=WEBHOOK_REFUSED,
                non_retryable=True,
            ) from None

        body = await self._event_body(job, group, event_type)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": target.host_header(),
            **signed_headers(delivery.event_id, body, signing_secrets(config, now), now),
        }
        retry_after: float | None = None
        try:
            # The timeout bounds the whole attempt (httpx's own is per read: a receiver
            # dripping bytes could hold it for ever). The response body is never read.
            async with (
                telemetry.webhook_attempt(record, headers),  # a span; traceparent header
                asyncio.timeout(delivery.options.timeout_seconds),
                self.http.stream(
                    "POST",
                    target.connect_url(),
                    content=body,
                    headers=headers,
                    timeout=delivery.options.timeout_seconds,
                    extensions={"sni_hostname": target.host},
                ) as response,
            ):
                record.status_code = response.status_code
                if response.status_code in (429, 503):
                    retry_after = retry_after_seconds(response.headers.get("retry-after"), now)
            ok = 200 <= response.status_code < 300
            if not ok:
                record.error = f"HTTP {response.status_code}"
        except (TimeoutError, httpx.TimeoutException):
            ok, record.error = False, f"timed out after {delivery.options.timeout_seconds:g} s"
        except httpx.HTTPError as err:
            ok, record.error = False, f"{type(err).__name__}: {err}"[:500]
        record.duration_ms = int((time.monotonic() - started) * 1000)
        # What goes back through Temporal: the status or the kind of failure, never the
        # receiver's bytes (the full error is recorded with the attempt).
        outcome = (
            f"HTTP {record.status_code}"
            if record.status_code is not None
            else (record.error or "").split(":", 1)[0]
        )

        if ok:
            await self._record(record)
            return record.outcome
        if record.status_code == 410:
            record.outcome = contract.DELIVERY_FAILED
            await self._record(record)
            raise ApplicationError("receiver answered 410 Gone", type=WEBHOOK_GONE)
        if attempt > len(delays):
            record.outcome = contract.DELIVERY_FAILED
            await self._record(record)
            raise ApplicationError(
                f"gave up after {attempt} attempts: {outcome}", type=WEBHOOK_GAVE_UP
            )
        wait = delays[attempt - 1]
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.settings.webhooks_max_retry_after_seconds))
        record.outcome = contract.RETRYING
        record.next_attempt_at = now + timedelta(seconds=wait)
        await self._record(record)
        raise ApplicationError(
            f"attempt {attempt} failed: {outcome}",
            type=RETRY_LATER,
            next_retry_delay=timedelta(seconds=wait),
        )

    async def _event_body(self, job: Job, group: JobGroup, event_type: str) -> bytes:
        """The event, with the output inline or, above the inline limit, as a signed link
        (a review request carries neither)."""
        data, data_url = None, None
        terminal = event_type != contract.TRANSLATION_REVIEW_REQUESTED
        if terminal and job.status in contract.SUCCEEDED and job.output_ref:
            async with self.db.session() as session:
                size = await documents.blob_size(session, job.organization_id, job.output_ref)
                if size > self.settings.webhooks_inline_limit_bytes:
                    data_url = output_url(
                        self.settings.public_url,
                        self.secret_key,
                        job.id,
                        self.settings.webhooks_data_url_ttl_seconds,
                    )
                else:
                    data = await documents.get_document(
                        session, job.organization_id, job.output_ref
                    )
        return event_body(job, group, data, data_url, event_type)

    async def _record(self, record: Delivery) -> None:
        async with self.db.writing() as session:
            await deliveries.record_delivery(session, record)
        metrics.webhook_attempt(record.outcome)
