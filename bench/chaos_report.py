"""What a chaos run tells: its figures, the diagnosis printed when an invariant broke (the
subjects, then in full the first groups involved, then the components' logs), and its
section of BENCHMARKS.md."""

from __future__ import annotations

import subprocess
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos_checks import LATE
from bench.chaos_config import COMPONENTS, GROUP_AND_JOB_WORKFLOWS, SUCCEEDED, Config
from bench.chaos_evidence import fmt, log_mentions, log_tail, short, stream_summary
from bench.chaos_records import Checked, Faults, Observed, Result
from bench.common import machine
from stack import Stack

ROOT = Path(__file__).resolve().parent.parent


def parse_time(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def figures_of(
    config: Config, seen: Observed, checked: Checked, faults: Faults, v: dict[str, list[str]]
) -> dict[str, Any]:
    """The run in figures, by name: what the table of BENCHMARKS.md shows and the test
    asserts."""
    accepted = seen.accepted_jobs()
    completed = [j for j in accepted if checked.jobs.get(j, {}).get("status") in SUCCEEDED]
    per_job = Counter(r.job_id for r in seen.receipts if r.delivered)
    delivered = [per_job.get(j, 0) for j in accepted]
    ids_per_job: dict[str | None, set[str | None]] = defaultdict(set)
    for r in seen.receipts:
        ids_per_job[r.job_id].add(r.webhook_id)
    completions = [parse_time(checked.jobs.get(j, {}).get("completedAt")) for j in accepted]
    ready = faults.temporal_ready_wall
    after = sorted(t for t in completions if t is not None and ready and t >= ready)
    hooks_after = sorted(r.at for r in seen.receipts if ready and r.at >= ready)
    outcomes = Counter(a.outcome for a in seen.attempts)
    drain = (
        seen.drained_at - faults.last_fault
        if seen.drained_at is not None and faults.last_fault is not None
        else float("nan")
    )
    return {
        "groups": config.groups,
        "locales": config.locales,
        "keys submitted twice": sum(1 for a in seen.attempts if a.lane == 1 and a.group_id),
        "groups accepted": len(set(seen.group_key)),
        "jobs accepted": len(accepted),
        "jobs completed": len(completed),
        "jobs lost": len(v["jobs lost"]),
        "jobs late": len(v[LATE]),
        "jobs failed or cancelled": len(v["jobs not completed"]),
        "keys not accepted": len(v["keys not accepted"]),
        "keys with exactly one group": len(seen.key_groups)
        - len(v["keys with more than one group"]),
        "POST attempts": len(seen.attempts),
        "POST outcomes": dict(sorted(outcomes.items())),
        "replayed 202s": sum(a.replayed for a in seen.attempts),
        "webhooks received": len(seen.receipts),
        "webhooks answered 503 (receiver outage)": sum(r.reply == 503 for r in seen.receipts),
        "webhooks delivered per job (min/max)": (
            min(delivered, default=0),
            max(delivered, default=0),
        ),
        "webhook-ids per job (max)": max((len(ids_per_job[j]) for j in accepted), default=0),
        "jobs with two terminal states": len(v["jobs with two terminal states"]),
        "jobs translated more than once": sum(
            1 for j in accepted if (checked.jobs.get(j, {}).get("attempts") or 0) > 1
        ),
        "worker / API / Temporal SIGKILLs": (
            faults.worker_kills,
            faults.api_kills,
            faults.temporal_kills,
        ),
        "components that exited on their own": len(faults.exits),
        "burst (s)": seen.burst_seconds,
        "drain after the last fault (s)": drain,
        "Temporal restart, spawn to ready (s)": faults.temporal_restart_seconds,
        "Temporal ready to first job completed (s)": after[0] - ready if after and ready else None,
        "Temporal ready to first webhook (s)": hooks_after[0] - ready
        if hooks_after and ready
        else None,
        "stop": seen.stop_reason,
    }


def diagnose(
    stack: Stack, seen: Observed, checked: Checked, faults: Faults, v: dict[str, list[str]]
) -> str:
    """Evidence for every broken invariant: the subjects, then in full the first groups
    involved (POSTs, GET bodies, job statuses, webhooks, deliveries, log lines), then the
    last lines of every component's log."""
    out, groups = _broken(seen, v)
    if not out:
        return ""
    out.append("")
    began = datetime.fromtimestamp(seen.wall0, UTC).strftime("%H:%M:%S.%f")[:-3]
    out.append(f"Timeline of faults (s since the burst began, at {began} UTC):")
    out += [f"  {f.at:6.1f} s  {f.what}" for f in faults.log]
    out += ["", f"Groups involved ({len(groups)}): GET status, job statuses, first 202, workflow:"]
    executions = {w[0]: w for w in checked.workflows}
    for gid in groups[:60]:
        got = checked.groups.get(gid, {})
        statuses = Counter(j["status"] for j in got.get("jobs", []))
        key = seen.group_key.get(gid, "")
        first = min((a.at for a in seen.attempts if a.key == key and a.group_id), default=None)
        wf = executions.get(gid)
        replay = checked.replays.get(key)
        out.append(
            f"  {gid}: {got.get('status') or short(got, 80)}; {dict(statuses)}; 202 at "
            f"{fmt(first)} s; final replay at {fmt(replay.at if replay else None)} s; "
            f"{'workflow ' + wf[2] + ', ' + wf[3] if wf else 'no workflow execution'}"
        )
    for gid in groups[:5]:
        out += _group_in_full(stack, seen, checked, gid)
    others = [w for w in checked.workflows if w[1] not in GROUP_AND_JOB_WORKFLOWS]
    out += ["", f"Other Temporal executions: {others}"]
    out += ["", f"Component logs ({stack.log_dir}), last lines:"]
    for name in COMPONENTS:
        out.append(log_tail(stack, name, 12))
    return "\n".join(out)


def _broken(seen: Observed, v: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The lines naming every broken invariant and its first 20 subjects, and the groups
    the subjects name (by group id, job id or key), in the order they come."""
    out: list[str] = []
    groups: list[str] = []
    for name, subjects in v.items():
        if not subjects:
            continue
        out.append(f"INVARIANT BROKEN: {name}: {len(subjects)}")
        for subject in subjects[:20]:
            out.append("  " + subject.replace("\n", "\n  "))
        for subject in subjects:
            for word in subject.replace("(", " ").replace(")", " ").replace(":", " ").split():
                # A group id, a job's group, a key's group: the groups the subject names.
                named = word if word.startswith("ljg_") else seen.job_group.get(word)
                for gid in (named, next(iter(seen.key_groups.get(word, ())), None)):
                    if gid and gid not in groups:
                        groups.append(gid)
        if len(subjects) > 20:
            out.append(f"  ... and {len(subjects) - 20} more")
    return out, groups


def _group_in_full(stack: Stack, seen: Observed, checked: Checked, gid: str) -> list[str]:
    """One group's whole story: its POSTs, GET bodies, event stream, rows, every job with
    its webhooks and deliveries, its Temporal executions and the log lines naming it."""
    out: list[str] = []
    key = seen.group_key.get(gid, "?")
    jobs = sorted({j for j, g in seen.job_group.items() if g == gid})
    jobs += sorted({j["id"] for j in checked.groups.get(gid, {}).get("jobs", [])} - set(jobs))
    out += ["", f"GROUP {gid} (key {key}, group index {seen.keys.get(key)})"]
    out.append("  POST attempts (s since burst began, duration, outcome, group, replayed):")
    replay = checked.replays.get(key)
    for a in [a for a in seen.attempts if a.key == key] + ([replay] if replay else []):
        out.append(
            f"    lane {a.lane} at {a.at:6.1f} s {a.seconds:5.2f} s {a.outcome} "
            f"{a.group_id} {'replayed' if a.replayed else ''} {a.job_ids}"
        )
    out.append(f"  GET group: {short(checked.groups.get(gid), 1500)}")
    out.append(f"  last GET during the drain: {short(seen.last_get.get(gid), 600)}")
    out.append(
        "  event stream (SSE from event 0): " + str(stream_summary(checked.events.get(gid, [])))
    )
    out.append(f"  database row: {checked.db_groups.get(gid)}")
    for job_id in jobs:
        got = checked.jobs.get(job_id, {})
        out.append(
            f"  job {job_id}: {got.get('targetLocale')} {got.get('status') or short(got)} "
            f"attempts {got.get('attempts')} error {got.get('error')!r} "
            f"completedAt {got.get('completedAt')} output "
            f"{'yes' if got.get('outputData') else 'no'}; database row "
            f"{checked.db_jobs.get(job_id)}; statuses seen {seen.history.get(job_id)}"
        )
        for r in [r for r in seen.receipts if r.job_id == job_id]:
            out.append(
                f"    webhook at {r.at - seen.wall0:6.1f} s {r.type} {r.status} "
                f"{r.webhook_id} reply {r.reply} signature {'ok' if r.signature_ok else 'BAD'}"
            )
        for row in checked.db_deliveries.get(job_id, []):
            out.append(f"    delivery record {row}")
    wfs = [w for w in checked.workflows if w[0] in {gid, *jobs}]
    out.append(f"  Temporal executions (id, type, status, s since the burst began): {wfs}")
    out += log_mentions(stack, {gid, *jobs})
    return out


def print_figures(result: Result) -> None:
    for name, value in result.figures.items():
        print(f"  {name:45} {fmt(value)}")
    for name, subjects in result.violations.items():
        mark = "ok" if not subjects else f"BROKEN ({len(subjects)})"
        print(f"  invariant: {name:56} {mark}")


SHOWN = [
    "groups accepted",
    "jobs accepted",
    "jobs completed",
    "jobs lost",
    "jobs late",
    "jobs failed or cancelled",
    "keys not accepted",
    "keys with exactly one group",
    "keys submitted twice",
    "POST attempts",
    "POST outcomes",
    "replayed 202s",
    "webhooks received",
    "webhooks answered 503 (receiver outage)",
    "webhooks delivered per job (min/max)",
    "webhook-ids per job (max)",
    "jobs with two terminal states",
    "jobs translated more than once",
    "worker / API / Temporal SIGKILLs",
    "components that exited on their own",
    "burst (s)",
    "drain after the last fault (s)",
    "Temporal restart, spawn to ready (s)",
    "Temporal ready to first job completed (s)",
    "Temporal ready to first webhook (s)",
]


def revision() -> str:
    """The commit measured, and whether the tree had changes beyond it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head or 'unknown'}{' with uncommitted changes' if dirty else ''}"


def report(results: list[Result], config: Config, command: str) -> str:
    runs = len(results)
    lines = [
        "## Chaos: nothing accepted is lost (`bench/chaos.py`)",
        "",
        f"`{command}` on {machine()}, code at {revision()}; each run on a fresh stack "
        "(dev server, two workers, API, "
        + (
            f"jobs through the LLM stand-in answering in {config.llm_latency:g} s ± half"
            if config.llm_latency
            else "jobs on the built-in pseudo engine"
        )
        + ", an HTTPS webhook receiver on loopback).",
        "",
        f"{config.groups} groups x {config.locales} locales at {config.rate:g} groups/s, "
        f"{config.duplicates:.0%} of the keys by two racing clients; every POST retried with "
        f"its key until a 202. Faults: a worker SIGKILLed every {config.kill_every:g} s and "
        f"restarted {config.worker_down:g} s later (through the burst and {config.drain_kills} "
        f"more after it), the API SIGKILLed and restarted once, the Temporal dev server "
        f"SIGKILLed once and restarted {config.temporal_down:g} s later on the same port and "
        f"database file, the receiver answering 503 for {config.receiver_outage:g} s from "
        "the fifth webhook after that restart.",
        "",
        "| figure | " + " | ".join(f"run {n + 1}" for n in range(runs)) + " |",
        "|---|" + "---|" * runs,
    ]
    for name in SHOWN:
        lines.append(f"| {name} | " + " | ".join(fmt(r.figures.get(name)) for r in results) + " |")
    lines.append(
        "| invariants broken | "
        + " | ".join(
            ", ".join(f"{k} ({len(s)})" for k, s in r.violations.items() if s) or "none"
            for r in results
        )
        + " |"
    )
    lines += [
        "",
        "Jobs lost: accepted (named in a 202) but not terminal, or completed without their "
        f"output. Jobs late: not done (group terminal, webhook answered) when nothing had "
        f"moved for {config.stall_limit:g} s; the run then waits up to {config.late_limit:g} s "
        "more to tell them from lost ones. Drain: from the last fault's restart until every "
        "group is terminal by GET and every job's webhook was answered 2xx. Resume: from the "
        "moment the restarted Temporal server answered until the first job's completedAt, "
        "and the first webhook, after it.",
    ]
    for n, result in enumerate(results):
        broken = {name: subjects for name, subjects in result.violations.items() if subjects}
        if broken:
            lines += ["", f"Run {n + 1} broke (the first subject of each; the run prints all):"]
            for name, subjects in broken.items():
                first = subjects[0].split("\n", 1)[0]
                lines.append(f"- {name} ({len(subjects)}): `{short(first, 240)}`")
    return "\n".join(lines)
