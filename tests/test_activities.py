"""Every job activity is idempotent: a second attempt (after a crash, a timeout) finds the
first one's effect and neither redoes nor undoes it. The activities run for real on a real
SQLite file, with the SDK's activity environment in place of a worker (what Temporal does
on a retry is to call the activity again, which is what these tests do)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.jobs import JobActivities
from activities.stages import StageActivities
from activities.webhooks import WebhookActivities
from localization.batch import BatchAnswer, BatchRequest
from providers.pseudo import PseudoProvider
from settings import Settings, batch_limits
from store import accounts, deliveries, documents, engines, groups, jobs
from store.db import Database
from store.tables import Job, JobGroup
from workflows.messages import (
    DeliverWebhookInput,
    FinishJobInput,
    RecordGroupResultInput,
    RecordJobResultInput,
    ResetJobsInput,
    StageJobInput,
    TranslateJobInput,
    contract_schedule,
)


class CountingPseudo(PseudoProvider):
    """The offline provider, counting the batches it translates."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    async def translate(self, model: str | None, request: BatchRequest) -> BatchAnswer:
        self.batches += 1
        return await super().translate(model, request)


@pytest.fixture()
async def world(tmp_path: Path) -> AsyncIterator[tuple[Database, str, str]]:
    """A database with one organization, one group of two jobs (de, fr): (db, de, fr)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tolk.db'}")
    await db.create_schema()
    document = documents.encode_document({"title": "Hello {name}", "body": "Welcome"})
    async with db.writing() as session:
        org = await accounts.create_organization(session, "acme")
        engine = await engines.default_engine(session, org.id)
        assert engine is not None
        group = JobGroup(
            id="ljg_activities0001",
            organization_id=org.id,
            engine_id=engine.id,
            source_locale="en",
            target_locales=["de", "fr"],
            source_ref=hashlib.sha256(document).hexdigest(),
            fingerprint="f",
        )
        jobs = [
            Job(
                id=f"ljb_activities{locale}00",
                group_id=group.id,
                organization_id=org.id,
                engine_id=engine.id,
                source_locale="en",
                target_locale=locale,
            )
            for locale in ("de", "fr")
        ]
        assert await groups.insert_group(session, group, jobs, document)
    yield db, jobs[0].id, jobs[1].id
    await db.close()


async def job_row(db: Database, job_id: str) -> Job:
    async with db.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


def run(fn: Callable[..., Any], *args: Any) -> Any:
    return ActivityEnvironment().run(fn, *args)


async def test_a_second_translate_attempt_returns_the_stored_output(
    world: tuple[Database, str, str],
) -> None:
    db, de, _ = world
    provider = CountingPseudo()
    acts = JobActivities(db, {"pseudo": provider}, batch_limits(Settings()))
    first = await run(acts.translate_job, TranslateJobInput(job_id=de))
    stored = await job_row(db, de)
    assert first.status == stored.status == "completed"
    batches = provider.batches
    assert batches >= 1

    # The worker died after storing the output, before Temporal heard: the retry.
    again = await run(acts.translate_job, TranslateJobInput(job_id=de))
    assert again.status == "completed" and again.strings == first.strings
    after = await job_row(db, de)
    assert provider.batches == batches, "the second attempt must not translate again"
    assert after.status == "completed" and after.attempts == stored.attempts
    assert after.output_ref == stored.output_ref and after.completed_at == stored.completed_at


async def test_a_retried_attempt_after_the_store_makes_the_webhook_attempt_too(
    world: tuple[Database, str, str],
) -> None:
    """The worker died after storing the output and before Temporal heard: the retry finds
    the job done and makes the webhook's first attempt again (here: skipped, the group has
    no callbackUrl, which is recorded all the same), outside the write it read the job in
    (the process's writers queue on one lock, which the attempt's record needs too)."""
    db, de, _ = world
    webhooks = WebhookActivities(db, Settings())
    acts = JobActivities(
        db, {"pseudo": PseudoProvider()}, batch_limits(Settings()), None, None, webhooks
    )
    deliver = DeliverWebhookInput(job_id=de, event_id="msg_retried", options=contract_schedule())
    retry: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    try:
        first = await run(acts.translate_job, TranslateJobInput(job_id=de, deliver=deliver))
        # A hang here is the defect; the limit only ends the test (the attempt is left
        # pending: cancelling it would wait on the same lock).
        retry = asyncio.ensure_future(
            run(acts.translate_job, TranslateJobInput(job_id=de, deliver=deliver))
        )
        done, _ = await asyncio.wait({retry}, timeout=60)
        assert done, "the retried attempt hangs on the process's write lock"
        again = retry.result()
    finally:
        if retry.done():
            await webhooks.close()
    assert first.webhook is not None and first.webhook.outcome == "skipped"
    assert again.status == "completed" and again.webhook == first.webhook
    row = await job_row(db, de)
    async with db.session() as session:
        log = await deliveries.job_deliveries(session, row.organization_id, de)
    assert [d.outcome for d in log] == ["skipped", "skipped"]


async def test_a_terminal_job_never_moves_back_except_by_a_retry(
    world: tuple[Database, str, str],
) -> None:
    db, de, fr = world
    acts = JobActivities(db, {"pseudo": PseudoProvider()}, batch_limits(Settings()))
    await run(acts.translate_job, TranslateJobInput(job_id=de))
    done = await job_row(db, de)

    # A late record of a failure (or a cancel) for a job whose output is stored.
    for late in ("failed", "cancelled"):
        answer = await run(
            acts.record_job_result, RecordJobResultInput(job_id=de, status=late, error="late")
        )
        assert answer == "completed"
    kept = await job_row(db, de)
    assert (kept.status, kept.error, kept.output_ref) == ("completed", None, done.output_ref)

    # A failure recorded twice keeps the first.
    assert (
        await run(acts.record_job_result, RecordJobResultInput(job_id=fr, status="failed"))
        == "failed"
    )
    assert (
        await run(acts.record_job_result, RecordJobResultInput(job_id=fr, status="cancelled"))
        == "failed"
    )
    # A translate attempt on a job that ended is refused, and changes nothing.
    with pytest.raises(ApplicationError) as refused:
        await run(acts.translate_job, TranslateJobInput(job_id=fr))
    assert refused.value.non_retryable and refused.value.type == "JobEnded"
    assert (await job_row(db, fr)).status == "failed"

    # Only an explicit retry moves a failed job back; a completed one stays as it is.
    await run(acts.reset_jobs, ResetJobsInput(group_id="ljg_activities0001", job_ids=[de, fr]))
    assert (await job_row(db, de)).status == "completed"
    assert (await job_row(db, fr)).status == "queued"
    await run(acts.translate_job, TranslateJobInput(job_id=fr))
    assert (await job_row(db, fr)).status == "completed"


async def test_an_output_stored_after_a_cancel_does_not_undo_it(
    world: tuple[Database, str, str],
) -> None:
    db, de, _ = world
    acts = JobActivities(db, {"pseudo": PseudoProvider()}, batch_limits(Settings()))
    async with db.writing() as session:  # the attempt has started
        await jobs.mark_job_processing(session, de)
    await run(acts.record_job_result, RecordJobResultInput(job_id=de, status="cancelled"))
    async with db.writing() as session:  # a zombie attempt stores its output late
        after = await jobs.complete_job(
            session, de, status="completed", output=b"{}", warnings=[], usage={}, steps=[]
        )
    assert after == "cancelled"
    job = await job_row(db, de)
    assert job.status == "cancelled" and job.output_ref is None


async def test_each_staged_step_done_already_answers_without_doing_it_again(
    world: tuple[Database, str, str],
) -> None:
    db, de, _ = world
    provider = CountingPseudo()
    limits = batch_limits(Settings())
    acts = JobActivities(db, {"pseudo": provider}, limits)
    stages = StageActivities(db, {"pseudo": provider}, limits)
    first = await run(acts.translate_job, TranslateJobInput(job_id=de, draft=True))
    drafted = await job_row(db, de)
    assert first.status == drafted.status == "processing"
    assert drafted.draft_ref is not None and drafted.output_ref is None
    batches = provider.batches
    again = await run(acts.translate_job, TranslateJobInput(job_id=de, draft=True))
    assert again.status == "processing" and provider.batches == batches

    reviewed = await run(stages.review_job, StageJobInput(job_id=de, threshold=90))
    assert reviewed.status == "completed"
    steps = (await job_row(db, de)).steps
    assert [s["stepId"] for s in steps] == ["translate", "aiReview"]
    await run(stages.review_job, StageJobInput(job_id=de, threshold=90))
    assert (await job_row(db, de)).steps == steps, "a second attempt must not review again"

    done = await run(stages.finish_job, FinishJobInput(job_id=de))
    finished = await job_row(db, de)
    assert done.status == finished.status == "completed"
    assert finished.output_ref == drafted.draft_ref and finished.draft_ref is None
    twice = await run(stages.finish_job, FinishJobInput(job_id=de))
    assert twice.status == "completed"
    assert (await job_row(db, de)).completed_at == finished.completed_at


async def test_a_staged_job_cancelled_meanwhile_keeps_its_end(
    world: tuple[Database, str, str],
) -> None:
    db, de, _ = world
    acts = JobActivities(db, {"pseudo": PseudoProvider()}, batch_limits(Settings()))
    stages = StageActivities(db, {"pseudo": PseudoProvider()}, batch_limits(Settings()))
    await run(acts.translate_job, TranslateJobInput(job_id=de, draft=True))
    await run(acts.record_job_result, RecordJobResultInput(job_id=de, status="cancelled"))
    for attempt in (
        lambda: run(stages.back_translate_job, StageJobInput(job_id=de)),
        lambda: run(stages.finish_job, FinishJobInput(job_id=de, failed_stages=["aiReview"])),
    ):
        with pytest.raises(ApplicationError) as refused:
            await attempt()
        assert refused.value.non_retryable and refused.value.type == "JobEnded"
    job = await job_row(db, de)
    assert job.status == "cancelled" and job.output_ref is None
    assert [s["stepId"] for s in job.steps] == ["translate"] and job.warnings == []


async def test_a_job_without_a_row_fails_loudly_at_once(world: tuple[Database, str, str]) -> None:
    db, _, _ = world
    acts = JobActivities(db, {"pseudo": PseudoProvider()}, batch_limits(Settings()))
    for call, arg in (
        (acts.translate_job, TranslateJobInput(job_id="ljb_nosuchjob000000")),
        (
            acts.record_job_result,
            RecordJobResultInput(job_id="ljb_nosuchjob000000", status="failed"),
        ),
    ):
        with pytest.raises(ApplicationError) as missing:
            await run(call, arg)
        assert missing.value.type == "JobRowMissing" and missing.value.non_retryable


async def test_recording_a_group_twice_keeps_its_first_end(
    world: tuple[Database, str, str],
) -> None:
    db, de, fr = world
    acts = JobActivities(db, {"pseudo": PseudoProvider()}, batch_limits(Settings()))
    record = RecordGroupResultInput(
        group_id="ljg_activities0001", status="failed", log=[[de, "failed"], [fr, "failed"]]
    )
    await run(acts.record_group_result, record)
    async with db.session() as session:
        first = await session.get(JobGroup, "ljg_activities0001")
        assert first is not None and first.status == "failed" and first.completed_at
    await run(acts.record_group_result, record)  # the activity retried after a crash
    async with db.session() as session:
        again = await session.get(JobGroup, "ljg_activities0001")
        assert again is not None and again.completed_at == first.completed_at
    with pytest.raises(ApplicationError) as missing:
        await run(acts.record_group_result, RecordGroupResultInput("ljg_nosuchgroup0000", "failed"))
    assert missing.value.type == "GroupRowMissing" and missing.value.non_retryable
