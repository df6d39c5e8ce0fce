"""The PostgreSQL leg of ``make test`` (``TOLK_TEST_DATABASE=postgresql pytest -m pg``): the
tests that go through the database the most, about three minutes on two cores. An entry is
a whole file or ``file::test`` (with all of its parameters); ``tests/conftest.py`` marks
them ``pg`` and refuses a name its file no longer has.

Left out: tests about the progress hub's fan-out, the CLI's output, URL checks and
timeouts, those that start a stack of their own on SQLite, and the request rate shared by
two APIs (``tests/test_scale_out.py``, in the whole suite, runs that on PostgreSQL). Add a
test here when it runs SQL that none of these runs."""

PG_SUITE = {
    "test_jobs_e2e.py",
    "test_idempotency.py",
    "test_isolation.py",
    "test_review.py",
    "test_outbox.py",  # the outbox, the reconciler, racing cancel and retry
    *(
        f"test_webhooks.py::{name}"  # the delivery log, secrets, redelivery
        for name in (
            "test_each_finished_job_is_delivered_signed_with_its_output",
            "test_a_failing_receiver_gets_every_retry_with_the_same_webhook_id",
            "test_gone_stops_at_once_and_exhausted_schedule_gives_up_without_touching_the_job",
            "test_a_failed_job_sends_translation_failed",
            "test_a_large_output_is_sent_as_a_data_url_that_serves_exactly_the_output",
            "test_after_rotation_both_secrets_verify_during_the_overlap",
            "test_redelivery_sends_the_same_event_again_as_a_new_series",
            "test_default_url_from_settings_and_nothing_sent_without_one",
            "test_retrying_a_failed_job_supersedes_its_pending_failure_event",
        )
    ),
    *(
        f"test_progress.py::{name}"
        for name in (
            "test_websocket_streams_a_group_to_completion",
            "test_one_failing_locale_streams_job_failed_and_a_partial_group",
            "test_finished_group_gives_snapshot_completed_close",
            "test_upgrade_refused_without_key_or_for_foreign_group",
            "test_sse_refuses_like_the_websocket_and_checks_last_event_id",
            "test_after_the_group_ends_reconnect_and_resume_come_from_the_database",
            "test_sse_live_stream_has_ids_in_order",
            "test_read_tokens_open_one_group_stream_only",
            "test_news_is_read_from_the_memo_and_polls_query_the_workflow",
            "test_a_group_temporal_cannot_answer_for_still_gets_a_whole_snapshot",
            "test_the_hub_keeps_no_watch_of_a_finished_group_and_resumes_where_the_client_was",
            "test_a_group_removed_after_its_owner_was_remembered_is_a_404",
        )
    ),
    *(
        f"test_budget.py::{name}"
        for name in (
            "test_a_token_budget_stops_a_running_job_after_the_batches_in_flight",
            "test_a_usd_budget_counts_priced_answers_of_jobs_and_process_calls",
            "test_max_cost_usd_fails_unfinished_jobs_and_keeps_finished_ones",
            "test_max_cost_usd_must_be_a_positive_number",
            "test_a_budget_spent_before_a_stage_fails_the_job_not_only_the_stage",
            "test_usage_adds_up_jobs_and_process_calls_with_limits_and_what_remains",
            "test_usage_refuses_a_bad_query",
            "test_budgets_count_calendar_months_in_utc",
            "test_a_model_named_as_long_as_an_engine_allows_is_recorded",
        )
    ),
    "test_quotas.py::test_active_groups_are_limited_but_a_replay_is_not",
    *(
        f"test_human_review.py::{name}"
        for name in (
            "test_a_reviewed_group_waits_for_each_approval_then_completes",
            "test_a_review_timeout_continues_with_a_warning_or_fails_the_job",
            "test_a_bad_edit_is_400_naming_the_key_and_a_job_not_waiting_is_409",
            "test_the_third_reject_fails_the_job",
            "test_a_cancel_while_a_job_awaits_review_ends_it_cancelled",
            "test_a_retry_of_a_failed_reviewed_job_is_not_held_by_its_review_webhooks",
            "test_a_review_stored_twice_under_one_id_is_stored_once",
        )
    ),
}
