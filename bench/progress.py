"""Live progress under load: N WebSocket subscribers over M groups.

    python -m bench.progress                      # starts its own stack on free ports
    python -m bench.progress --api-url http://127.0.0.1:8000 --key "$(cat var/dev-api-key)"
                                                  # against a running `make run`
    python -m bench.progress --llm-latency 2 --activities 6
                                                  # jobs wait on a provider, as LLM jobs do

By default jobs use the built-in pseudo engine, which translates in milliseconds of CPU:
the stack then runs as fast as the machine allows and the figures include whatever
queueing that causes. ``--llm-latency`` routes every job through the local LLM stand-in
(tests/fake_llm.py, OpenAI wire format) answering after that many seconds, plus or minus
half of it: like a real provider, jobs then spend their time waiting, and with
``--activities`` the rate at which they finish is set by the bench, not by the CPU.

Reports the event lag (a job's completedAt, stored when its output is saved, to the moment
a subscriber receives its job.* message) p50/p99, the hub's Temporal queries per second
(from /metrics), and the API process's peak resident memory (sampled from /metrics).
Only loopback addresses are used; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.common import machine, own_stack, percentile, write_section

ROOT = Path(__file__).resolve().parent.parent

Stream = list[tuple[float, dict[str, Any]]]  # (receipt time, message)
LOCALES = ["de", "fr", "es", "it", "ja"]
DEFAULT_RATE = 4.0
WINDOW_SECONDS = 20


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat (Linux)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


def rss_parts(pid: int | None) -> tuple[float, float]:
    """(anonymous, file-backed) resident bytes of a local process, from /proc (Linux)."""
    if pid is None:
        return float("nan"), float("nan")
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan"), float("nan")
    kb = {m[1]: float(m[2]) * 1024 for m in re.finditer(r"^(Rss\w+):\s+(\d+) kB", status, re.M)}
    return kb.get("RssAnon", float("nan")), kb.get("RssFile", 0.0) + kb.get("RssShmem", 0.0)


async def sample_memory(
    http: httpx.AsyncClient, stop: asyncio.Event, peak: list[float], api_pid: int | None
) -> None:
    """Peak RSS and watched groups; with the API's pid, the RSS's anonymous and file-backed
    parts at that peak (the file-backed part, shared-library pages, moves by several MB
    from run to run with the page cache, whatever the process does)."""
    while not stop.is_set():
        text = (await http.get("/metrics")).text
        rss = metric(text, "process_resident_memory_bytes")
        if rss > peak[0]:
            peak[0] = rss
            peak[2], peak[3] = rss_parts(api_pid)
        peak[1] = max(peak[1], metric(text, "tolk_progress_watched_groups"))
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def watch_loop(stop: asyncio.Event, delays: list[tuple[float, float]]) -> None:
    """How late this process's own event loop wakes (a 20 ms sleep's overshoot, with its
    time): a receipt can be no earlier than the loop gets to it, so this is the part of
    the measured lag that is the bench client's own."""
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.02)
        delays.append((time.time(), (time.monotonic() - before - 0.02) * 1000))


async def subscribe(url: str, key: str, deadline: float) -> list[tuple[float, dict[str, Any]]]:
    received: list[tuple[float, dict[str, Any]]] = []
    async with connect(url, additional_headers={"X-API-Key": key}, open_timeout=60) as ws:
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            except Exception:
                break
            received.append((time.time(), json.loads(raw)))
    return received


async def run(
    api_url: str,
    key: str,
    subscribers: int,
    groups: int,
    rate: float,
    budget: float,
    engine_id: str | None = None,
    api_pid: int | None = None,
) -> dict[str, Any]:
    headers = {"X-API-Key": key}
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, timeout=60, limits=limits
    ) as http:
        before = (await http.get("/metrics")).text
        cpu_before = cpu_ticks()
        started = time.monotonic()
        started_at = time.time()

        async def submit(i: int) -> str:
            # Each group's own text, as in real use (the same text again would be served
            # from translation memory without asking the engine).
            document = {
                "title": f"Welcome to lesson {i}, {{name}}!",
                "steps": [
                    {"heading": f"Step {n} of lesson {i}", "body": f"<b>Do</b> thing {n} now"}
                    for n in range(10)
                ],
            }
            body: dict[str, Any] = {
                "sourceLocale": "en",
                "targetLocales": LOCALES,
                "data": document,
            }
            if engine_id:
                body["engineId"] = engine_id
            resp = await http.post("/jobs/localization", json=body)
            resp.raise_for_status()
            return str(resp.json()["groupId"])

        ws_base = api_url.replace("http://", "ws://")
        deadline = time.monotonic() + budget
        stop, peak = asyncio.Event(), [0.0, 0.0, float("nan"), float("nan")]
        sampler = asyncio.create_task(sample_memory(http, stop, peak, api_pid))
        loop_delays: list[tuple[float, float]] = []
        watcher = asyncio.create_task(watch_loop(stop, loop_delays))

        async def group_with_subscribers(
            i: int,
        ) -> tuple[str, list[list[tuple[float, dict[str, Any]]]]]:
            # Groups arrive at a steady rate, like traffic; each one's subscribers connect
            # as soon as its 202 is back.
            await asyncio.sleep(i / rate)
            gid = await submit(i)
            count = subscribers // groups + (1 if i < subscribers % groups else 0)
            url = f"{ws_base}/jobs/localization/groups/{gid}/ws"
            return gid, await asyncio.gather(*(subscribe(url, key, deadline) for _ in range(count)))

        results = await asyncio.gather(*(group_with_subscribers(i) for i in range(groups)))
        group_ids = [gid for gid, _ in results]
        streams = [stream for _, group_streams in results for stream in group_streams]
        elapsed = time.monotonic() - started
        cpu_after = cpu_ticks()
        stop.set()
        await sampler
        await watcher
        after = (await http.get("/metrics")).text

        completed_at: dict[str, float] = {}
        for gid in group_ids:
            group = (await http.get(f"/jobs/localization/groups/{gid}")).json()
            for job in group["jobs"]:
                detail = (await http.get(f"/jobs/localization/{job['id']}")).json()
                if detail["completedAt"]:
                    completed_at[job["id"]] = parse_time(detail["completedAt"])

    timed = [
        (received, (received - completed_at[msg["jobId"]]) * 1000)
        for stream in streams
        for received, msg in stream
        if msg["type"].startswith("job.") and msg["jobId"] in completed_at
    ]
    lags = [lag for _, lag in timed]
    # Once every subscriber holds its socket (each stream's first message, the snapshot,
    # arrives right after it connects): the hub's steady state, without the connect storm.
    all_connected = max((stream[0][0] for stream in streams if stream), default=0.0)
    steady = [lag for received, lag in timed if received > all_connected]
    closed = sum(1 for s in streams if s and s[-1][1]["type"] == "group.completed")
    queries = metric(after, "tolk_progress_queries_total") - metric(
        before, "tolk_progress_queries_total"
    )
    polls = metric(after, "tolk_progress_polls_total") - metric(before, "tolk_progress_polls_total")
    return {
        "subscribers": subscribers,
        "groups": groups,
        "jobs": groups * len(LOCALES),
        "rate": rate,
        "seconds": elapsed,
        "job_events": len(lags),
        "streams_completed": closed,
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags) if lags else float("nan"),
        "steady_events": len(steady),
        "steady_p50_ms": percentile(steady, 50),
        "steady_p99_ms": percentile(steady, 99),
        # How the lag moves through the run: the submission and connect burst comes first.
        "window_p99_ms": window_p99(timed, started_at),
        "client_delay_p99_ms": window_p99(loop_delays, started_at),
        "queries_per_s": queries / elapsed,
        "polls_per_s": polls / elapsed,
        "api_peak_rss_mb": peak[0] / 2**20,
        "api_peak_anon_mb": peak[2] / 2**20,
        "api_peak_file_mb": peak[3] / 2**20,
        "cpu_busy_pct": 100 * (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1]),
        "peak_watched_groups": peak[1],
    }


def window_p99(samples: list[tuple[float, float]], started_at: float) -> list[float]:
    """p99 of the values of ``(time, value)`` samples in each WINDOW_SECONDS of the run."""
    windows: dict[int, list[float]] = {}
    for at, value in samples:
        windows.setdefault(int((at - started_at) // WINDOW_SECONDS), []).append(value)
    return [percentile(windows[w], 99) for w in sorted(windows)]


def start_llm(latency: float) -> tuple[subprocess.Popen[str], str]:
    """The LLM stand-in in a process of its own (not competing with this one's event loop
    for the GIL); returns it and its OpenAI base URL."""
    llm = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_llm",
            "--slow-seconds",
            str(latency),
            "--slow-spread",
            str(latency / 2),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert llm.stdout is not None
    return llm, llm.stdout.readline().strip()


def create_llm_engine(api_url: str, key: str) -> str:
    """An engine that sends every pair to the stand-in's ``slow`` model."""
    model = {"sourceLocale": "*", "targetLocale": "*", "provider": "bench", "model": "slow:bench"}
    resp = httpx.post(
        f"{api_url}/engines",
        headers={"X-API-Key": key},
        json={"name": "bench-llm", "models": [model]},
        timeout=30,
    )
    resp.raise_for_status()
    return str(resp.json()["id"])


def report(figures: dict[str, Any], command: str) -> str:
    lines = [
        "## Live progress (`bench/progress.py`)",
        "",
        f"`{command}` on {machine()}.",
        "",
        "| figure | value |",
        "|---|---|",
        "| subscribers / groups / jobs | "
        f"{figures['subscribers']} / {figures['groups']} / {figures['jobs']} |",
        f"| groups submitted per second ({len(LOCALES)} locales each) | {figures['rate']:g} |",
        f"| wall time (submit to last close) | {figures['seconds']:.1f} s |",
        f"| job events received | {figures['job_events']} |",
        f"| streams that ended with group.completed | {figures['streams_completed']} |",
        f"| event lag p50 | {figures['lag_p50_ms']:.0f} ms |",
        f"| event lag p99 (target <= 300 ms) | {figures['lag_p99_ms']:.0f} ms |",
        f"| event lag max | {figures['lag_max_ms']:.0f} ms |",
        f"| once all subscribers were connected: events / lag p50 / p99 | "
        f"{figures['steady_events']} / {figures['steady_p50_ms']:.0f} ms / "
        f"{figures['steady_p99_ms']:.0f} ms |",
        f"| event lag p99 in each {WINDOW_SECONDS} s of the run | "
        + ", ".join(f"{lag:.0f}" for lag in figures["window_p99_ms"])
        + " ms |",
        f"| the bench's own event-loop delay p99 in each {WINDOW_SECONDS} s | "
        + ", ".join(f"{delay:.0f}" for delay in figures["client_delay_p99_ms"])
        + " ms |",
        f"| hub Temporal queries per second | {figures['queries_per_s']:.1f} |",
        f"| hub polls per second | {figures['polls_per_s']:.1f} |",
        f"| API peak RSS (target < 150 MB) | {figures['api_peak_rss_mb']:.0f} MB |",
        *(
            [
                f"| of which anonymous / file-backed | {figures['api_peak_anon_mb']:.0f} MB / "
                f"{figures['api_peak_file_mb']:.0f} MB |"
            ]
            if not math.isnan(figures["api_peak_anon_mb"])  # known for the bench's own stack
            else []
        ),
        f"| groups watched at once (peak) | {figures['peak_watched_groups']:.0f} |",
        f"| machine CPU busy (all cores, whole run) | {figures['cpu_busy_pct']:.0f}% |",
        "",
        "Lag runs from a job's `completedAt` (set when its output is stored) to the receipt of",
        "its `job.*` message; events that happened before a subscriber connected are not",
        "counted (its snapshot already had them).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api-url", help="a running stack (default: start one)")
    parser.add_argument("--key", help="API key for --api-url")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="groups submitted per second"
    )
    parser.add_argument(
        "--activities",
        type=int,
        help="activity slots of the bench's own worker (fewer: jobs finish at a slower, "
        "steady pace, so all groups stay live at once without saturating the machine)",
    )
    parser.add_argument(
        "--llm-latency",
        type=float,
        help="route jobs through the local LLM stand-in answering after this many seconds "
        "(plus or minus half); own stack only",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds before giving up")
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    if args.api_url and not args.key:
        parser.error("--key is required with --api-url")
    if args.api_url and (args.llm_latency or args.activities):
        parser.error("--llm-latency and --activities configure the bench's own stack")
    if args.api_url and not args.api_url.startswith(
        ("http://127.", "http://localhost", "http://[::1]")
    ):
        parser.error("only loopback stacks are benchmarked")

    command = "python -m bench.progress " + " ".join(sys.argv[1:])
    if args.key:  # the report goes into a committed file: never the key itself
        command = command.replace(args.key, '"$(cat var/dev-api-key)"')
    stack = None
    llm = None
    engine_id = None
    with tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp:
        try:
            if args.api_url:
                api_url, key = args.api_url, args.key
            else:
                overrides = {}
                if args.activities:
                    overrides["TOLK_WORKER_MAX_CONCURRENT_ACTIVITIES"] = str(args.activities)
                if args.llm_latency:
                    llm, base_url = start_llm(args.llm_latency)
                    overrides["TOLK_LLM_PROVIDERS"] = json.dumps(
                        {"bench": {"type": "openai", "base_url": base_url, "api_key": "test-key"}}
                    )
                    overrides["TOLK_LLM_TIMEOUT_SECONDS"] = str(max(60.0, 4 * args.llm_latency))
                stack, key = own_stack(Path(tmp), **overrides)
                api_url = stack.api_url
                if llm is not None:
                    engine_id = create_llm_engine(api_url, key)
            figures = asyncio.run(
                run(
                    api_url,
                    key,
                    args.subscribers,
                    args.groups,
                    args.rate,
                    args.timeout,
                    engine_id,
                    stack.procs["api"].pid if stack is not None else None,
                )
            )
        finally:
            if stack is not None:
                stack.stop()
            if llm is not None:
                llm.communicate(timeout=10)  # closes its stdin: it stops
    section = report(figures, command.strip())
    print(section)
    if args.write:
        name = "progress" if args.rate == DEFAULT_RATE else f"progress-rate-{args.rate:g}"
        if args.activities:
            name += f"-activities-{args.activities}"
        if args.llm_latency:
            name += f"-llm-{args.llm_latency:g}"
        write_section(args.write, name, section)


if __name__ == "__main__":
    main()
