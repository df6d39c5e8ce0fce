"""Nothing accepted is lost, the short version of ``bench/chaos.py``: the same code and the
same faults (workers SIGKILLed every few seconds, the API once, the Temporal dev server
once, a receiver outage) over fewer groups, on a stack of its own (it kills components,
so never the session's shared stack)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import Config, run_chaos


def test_chaos_every_accepted_job_completes_with_one_webhook_id(tmp_path: Path) -> None:
    config = Config(
        groups=15,
        locales=3,
        rate=2.0,  # a 7.5 s burst: every fault lands while groups are still arriving
        kill_every=2.0,
        temporal_down=12.0,  # longer than the Temporal client's own retries (10 s)
        receiver_outage=1.5,
        drain_kills=2,
        llm_latency=0.3,
        # Safety nets, not speed checks: they only end a run that cannot finish.
        accept_limit=120.0,
        drain_limit=180.0,
        stall_limit=40.0,
        late_limit=0.0,  # a stall fails the test: no waiting to see whether it is only late
    )
    result = run_chaos(config, tmp_path)
    figures = result.figures
    print(figures)
    assert result.ok, f"logs in {result.root / 'logs'}\n{result.diagnosis}"
    # The faults really happened, and everything accepted came through.
    worker_kills, api_kills, temporal_kills = figures["worker / API / Temporal SIGKILLs"]
    assert worker_kills >= 3 and api_kills == 1 and temporal_kills == 1, figures
    assert figures["groups accepted"] == 15
    assert figures["jobs completed"] == figures["jobs accepted"] == 45
    assert figures["jobs lost"] == figures["jobs late"] == 0
    assert figures["webhooks delivered per job (min/max)"][0] >= 1
    assert figures["webhook-ids per job (max)"] == 1
    assert figures["jobs with two terminal states"] == 0
