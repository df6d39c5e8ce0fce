"""Acceptance latency: what a client waits for its 202, next to Temporal's own start latency.

    python -m bench.accept [--write BENCHMARKS.md]

Starts its own stack on free ports (dev server, worker, API), then measures, in this order:
1. end to end, on the idle stack: one 14-locale group over a ~200-string document, POST to
   terminal (GET polled every 50 ms), five times;
2. with groups running: while a second client submits 5-locale groups at a steady rate
   (``--background-groups`` per second) that the worker runs, raw ``start_workflow`` and
   POST /jobs/localization, alternating (two rounds), each with 1 and with 16 concurrent
   callers; both under the same background work (the groups the POSTs start run too);
3. with the worker stopped, so that neither side competes with translation work for the
   two cores: raw ``start_workflow`` on the same dev server (the baseline; a workflow type
   no worker polls), then POST /jobs/localization until the 202; each with 1 and with 16
   concurrent callers;
4. the request rate limit's cost: ``GET /jobs/localization?limit=1`` (a cheap keyed read)
   with the organization's rate uncounted (``--requests-per-minute none``) and counted
   (a limit it never reaches), alternating, each with 1 and with 16 concurrent callers.
Only loopback addresses are used; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from api.quotas import LIMITS_TTL_SECONDS
from bench.common import machine, percentile, temporary_stack, write_section
from stack import Stack

LOCALES_14 = ["de", "fr", "es", "it", "pt-BR", "ja", "ko", "zh-Hans", "zh-Hant", "ar", "he",
              "ru", "pl", "sv"]  # fmt: skip
SMALL = {"title": "Hello {name}", "items": [f"Item {i} <b>bold</b>" for i in range(19)]}
DOCUMENT_200 = {
    f"section{i}": {f"line{j}": f"Line {j} of {i}, {{user}} has %d items" for j in range(20)}
    for i in range(10)
}


def summary(samples: list[float], seconds: float) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50) * 1000,
        "p99": percentile(samples, 99) * 1000,
        "mean": statistics.fmean(samples) * 1000,
        "rps": len(samples) / seconds,
    }


async def timed_calls(call: Any, total: int, concurrency: int) -> dict[str, float]:
    samples: list[float] = []
    queue = list(range(total))

    async def lane() -> None:
        while queue:
            queue.pop()
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return summary(samples, time.perf_counter() - began)


async def end_to_end(http: httpx.AsyncClient, runs: int) -> dict[str, float]:
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        resp = await http.post(
            "/jobs/localization",
            json={"sourceLocale": "en", "targetLocales": LOCALES_14, "data": DOCUMENT_200},
        )
        resp.raise_for_status()
        group_id = resp.json()["groupId"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = (await http.get(f"/jobs/localization/groups/{group_id}")).json()
            if body["status"] in {"completed", "partial", "failed", "cancelled"}:
                break
            await asyncio.sleep(0.05)
        assert body["status"] == "completed", body
        durations.append(time.perf_counter() - started)
    return {
        "median_s": statistics.median(durations),
        "max_s": max(durations),
        "jobs_per_s": len(LOCALES_14) / statistics.median(durations),
    }


async def background_groups(http: httpx.AsyncClient, per_second: float, stop: asyncio.Event) -> int:
    """Submit a 5-locale group every 1/``per_second`` s until ``stop``: work for the worker
    (and the dev server, and the API's progress) while acceptance is measured. Returns how
    many were accepted."""
    accepted = 0
    while not stop.is_set():
        resp = await http.post(
            "/jobs/localization",
            json={"sourceLocale": "en", "targetLocales": LOCALES_14[:5], "data": SMALL},
        )
        accepted += resp.status_code == 202
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / per_second)
    return accepted


def mean_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.fmean(r[k] for r in runs) for k in runs[0]}


async def run(stack: Stack, key: str, n: int, background: float) -> dict[str, Any]:
    from temporalio.client import Client

    figures: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=32)
    async with (
        httpx.AsyncClient(
            base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60, limits=limits
        ) as http,
        httpx.AsyncClient(
            base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60
        ) as background_http,
    ):
        figures["e2e"] = await end_to_end(http, runs=5)

        temporal = await Client.connect(
            stack.settings.temporal_target, namespace=stack.settings.temporal_namespace
        )

        async def start() -> None:
            await temporal.start_workflow(
                "BenchNoop", id=f"bench-{uuid.uuid4().hex}", task_queue="bench-unused"
            )

        async def post() -> None:
            resp = await http.post(
                "/jobs/localization",
                json={"sourceLocale": "en", "targetLocales": ["de", "fr", "ja"], "data": SMALL},
            )
            assert resp.status_code == 202, resp.text

        await timed_calls(start, 20, 4)  # warm-up
        await timed_calls(post, 20, 4)

        # With groups running: the same background for both shapes, alternating.
        stop = asyncio.Event()
        submitter = asyncio.create_task(background_groups(background_http, background, stop))
        await asyncio.sleep(3)  # until the background is under way
        busy: dict[str, list[dict[str, float]]] = {}
        for _round in range(2):
            for name, call in (("raw", start), ("post", post)):
                for level in (1, 16):
                    busy.setdefault(f"{name}_{level}", []).append(
                        await timed_calls(call, n // 2, level)
                    )
        stop.set()
        figures["background_accepted"] = await submitter
        for name, runs in busy.items():
            figures[f"busy_{name}"] = mean_of(runs)

        stack.kill("worker", signal.SIGTERM)
        figures["raw_1"] = await timed_calls(start, n, 1)
        figures["raw_16"] = await timed_calls(start, n, 16)
        await timed_calls(post, 20, 4)  # warm-up
        figures["post_1"] = await timed_calls(post, n, 1)
        figures["post_16"] = await timed_calls(post, n, 16)

        async def read() -> None:
            resp = await http.get("/jobs/localization", params={"limit": 1})
            assert resp.status_code == 200, resp.text

        org = (await http.get("/users/me")).json()["organizationId"]
        samples: dict[str, list[dict[str, float]]] = {}
        for _round in range(2):  # alternating, so drift hits both alike
            for name, limit in (("uncounted", "none"), ("counted", "100000000")):
                set_rate(stack, org, limit)
                await timed_calls(read, 20, 4)  # warm-up
                for level in (1, 16):
                    got = await timed_calls(read, n, level)
                    samples.setdefault(f"{name}_{level}", []).append(got)
        for name, runs in samples.items():
            figures[name] = mean_of(runs)
    return figures


def set_rate(stack: Stack, org: str, limit: str) -> None:
    """The organization's request rate, then long enough for the API to read it again."""
    subprocess.run(
        [sys.executable, "-m", "cli.main", "orgs", "limits", org, "--requests-per-minute", limit],
        env=stack.env,
        check=True,
        capture_output=True,
    )
    time.sleep(LIMITS_TTL_SECONDS + 0.5)


def accept_rows(figures: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for level in (1, 16):
        api, raw = figures[f"{prefix}post_{level}"], figures[f"{prefix}raw_{level}"]
        rows.append(
            f"| {level} | {api['p50']:.1f} | {api['p99']:.1f} | {api['mean']:.1f} | "
            f"{api['rps']:.0f} | {raw['p50']:.1f} | {raw['p99']:.1f} | {raw['rps']:.0f} | "
            f"{api['p50'] / raw['p50']:.1f}x |"
        )
    return rows


ACCEPT_HEADER = [
    "| clients | POST p50 | POST p99 | POST mean | POST req/s | start p50 | start p99 "
    "| start/s | p50 ratio |",
    "|---|---|---|---|---|---|---|---|---|",
]


def report(figures: dict[str, Any], command: str, background: float) -> str:
    rate_rows = [
        f"| {level} | {figures[f'uncounted_{level}']['p50']:.1f} "
        f"| {figures[f'counted_{level}']['p50']:.1f} "
        f"| {figures[f'uncounted_{level}']['rps']:.0f} | {figures[f'counted_{level}']['rps']:.0f} "
        f"| {figures[f'counted_{level}']['p50'] / figures[f'uncounted_{level}']['p50']:.2f}x |"
        for level in (1, 16)
    ]
    e2e = figures["e2e"]
    return "\n".join(
        [
            "## Accepting work (`bench/accept.py`)",
            "",
            f"`{command}` on {machine()}; its own stack (dev server, one worker, API).",
            "",
            "POST /jobs/localization until the 202 (3 locales, 20 strings), next to raw",
            "`start_workflow` on the same dev server, with groups running: another client",
            f"submitting {background:g} five-locale groups per second for the worker"
            f" ({figures['background_accepted']} in all), the groups the POSTs start running"
            " too; raw and POST alternating, two rounds, means (ms):",
            "",
            *ACCEPT_HEADER,
            *accept_rows(figures, "busy_"),
            "",
            "The same with the worker stopped for both (ms):",
            "",
            *ACCEPT_HEADER,
            *accept_rows(figures),
            "",
            "End to end on the idle stack, one 14-locale group over a 200-string document,"
            " POST to terminal (5 runs):",
            "",
            "| median | max | locale jobs/s |",
            "|---|---|---|",
            f"| {e2e['median_s']:.2f} s | {e2e['max_s']:.2f} s | {e2e['jobs_per_s']:.1f} |",
            "",
            "The request rate limit's cost on a keyed read (`GET /jobs/localization?limit=1`),"
            " the organization's rate uncounted and counted, alternating (two rounds, means"
            " of their p50s, ms):",
            "",
            "| clients | uncounted p50 | counted p50 | uncounted req/s | counted req/s "
            "| p50 ratio |",
            "|---|---|---|---|---|---|",
            *rate_rows,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="timed calls per level")
    parser.add_argument(
        "--background-groups", type=float, default=4, help="groups per second meanwhile"
    )
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    command = "python -m bench.accept " + " ".join(sys.argv[1:])
    with temporary_stack() as (stack, key, _root):
        figures = asyncio.run(run(stack, key, args.requests, args.background_groups))
    section = report(figures, command.strip(), args.background_groups)
    print(section)
    if args.write:
        write_section(args.write, "accept", section)


if __name__ == "__main__":
    main()
