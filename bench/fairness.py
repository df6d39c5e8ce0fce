"""Fairness between organizations: organization B's one-locale job, idle and while
organization A floods the stack with 100-locale groups, with Temporal's task-queue fairness
off (first come, first served: the baseline) and on (a fairness key per organization), in
the same run, each on a fresh stack of its own. Then a provider's ``requests_per_minute``
with two worker processes: the most requests the LLM stand-in received in any 60 s, against
the limit.

    python -m bench.fairness                          # about four minutes on 2 cores
    python -m bench.fairness --write BENCHMARKS.md

Every job goes through the local LLM stand-in (``tests/fake_llm.py``, OpenAI wire format),
answering after ``--llm-latency`` seconds (plus or minus half), so the flood is a backlog of
activity tasks, as with a real provider. B's latency is from its POST to the group's
terminal status seen by polling ``GET /jobs/localization/groups/{id}`` every 50 ms; the
samples "during the flood" are only those that ended before A's last group did.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import babel.localedata
import httpx

from bench.common import machine, own_stack, write_section
from bench.progress import create_llm_engine, start_llm
from localization.language import normalize_locale

TERMINAL = {"completed", "partial", "failed", "cancelled"}
# A's documents: a few strings, like a help-centre article's title and summary.
FLOOD_DOCUMENT = {"title": "Hello {name}", "summary": "Open <b>Settings</b> to begin.", "cta": "Go"}
B_DOCUMENT = {"title": "Welcome back, {name}!"}


def target_locales(count: int) -> list[str]:
    """``count`` language codes the API accepts (CLDR's, without region), English left out."""
    found = []
    for ident in sorted(babel.localedata.locale_identifiers()):
        if "_" in ident or ident == "en":
            continue
        try:
            normalize_locale(ident)
        except ValueError:
            continue
        found.append(ident)
    return found[:count]


def second_key(stack: Any) -> str:
    """An API key of a second organization on ``stack``."""
    run = [sys.executable, "-m", "cli.main"]
    org = json.loads(
        subprocess.check_output([*run, "orgs", "create", "bench-b", "--json"], env=stack.env)
    )["id"]
    created = subprocess.check_output(
        [*run, "keys", "create", "--org", org, "--json"], env=stack.env
    )
    return str(json.loads(created)["key"])


def submit(http: httpx.Client, engine: str, locales: list[str], data: dict[str, Any]) -> str:
    resp = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": locales, "data": data, "engineId": engine},
    )
    resp.raise_for_status()
    return str(resp.json()["groupId"])


def status(http: httpx.Client, group_id: str) -> str:
    return str(http.get(f"/jobs/localization/groups/{group_id}").json()["status"])


def one_job(http: httpx.Client, engine: str, n: int) -> tuple[float, float]:
    """B's one-locale group (its ``n``-th, so translation memory never answers for the
    model): seconds from its POST to its terminal status, and when it ended."""
    started = time.monotonic()
    group_id = submit(http, engine, ["de"], {"title": f"{B_DOCUMENT['title']} ({n})"})
    while status(http, group_id) not in TERMINAL:
        time.sleep(0.05)
    ended = time.monotonic()
    return ended - started, ended


def run_case(fair: bool, args: argparse.Namespace) -> dict[str, Any]:
    llm, base_url = start_llm(args.llm_latency)
    try:
        with tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp:
            overrides = {
                "TOLK_TEMPORAL_FAIRNESS": "true" if fair else "false",
                "TOLK_LLM_PROVIDERS": json.dumps(
                    {"bench": {"type": "openai", "base_url": base_url, "api_key": "test-key"}}
                ),
                "TOLK_LLM_TIMEOUT_SECONDS": str(max(60.0, 4 * args.llm_latency)),
                "TOLK_LIMITS_MAX_TARGETS": str(max(100, args.locales)),
            }
            stack, key_a = own_stack(Path(tmp), **overrides)
            try:
                return measure(stack, key_a, second_key(stack), args)
            finally:
                stack.stop()
    finally:
        llm.kill()
        llm.wait()


def measure(stack: Any, key_a: str, key_b: str, args: argparse.Namespace) -> dict[str, Any]:
    a = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key_a}, timeout=60)
    b = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key_b}, timeout=60)
    engine_a = create_llm_engine(stack.api_url, key_a)
    engine_b = create_llm_engine(stack.api_url, key_b)
    one_job(b, engine_b, 0)  # warm up: first connections, first workflow tasks
    idle = [one_job(b, engine_b, n)[0] for n in range(1, args.samples + 1)]
    locales = target_locales(args.locales)
    flood_started = time.monotonic()
    flood = [
        submit(a, engine_a, locales, {k: f"{v} ({n})" for k, v in FLOOD_DOCUMENT.items()})
        for n in range(args.groups)
    ]
    during: list[tuple[float, float]] = []
    while len(during) < args.samples * 3:
        during.append(one_job(b, engine_b, 100 + len(during)))
        if all(status(a, g) in TERMINAL for g in flood):
            break
    while not all(status(a, g) in TERMINAL for g in flood):
        time.sleep(0.2)
    flood_ended = time.monotonic()
    inside = [seconds for seconds, ended in during if ended <= flood_ended]
    return {
        "idle": idle,
        "during": inside,
        "flood_seconds": flood_ended - flood_started,
        "flood_jobs": args.groups * len(locales),
    }


def provider_case(args: argparse.Namespace) -> dict[str, Any]:
    """``--provider-jobs`` one-call jobs through a provider limited to ``--provider-rpm``,
    two worker processes: the stand-in's arrivals, as it saw them."""
    llm, base_url = start_llm(args.llm_latency)
    arrivals: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp:
            provider = {
                "type": "openai",
                "base_url": base_url,
                "api_key": "test-key",
                "requests_per_minute": args.provider_rpm,
            }
            stack, key = own_stack(
                Path(tmp),
                TOLK_WORKER_PROCESSES="2",
                TOLK_LLM_PROVIDERS=json.dumps({"bench": provider}),
                TOLK_LLM_TIMEOUT_SECONDS=str(max(60.0, 4 * args.llm_latency)),
            )
            try:
                http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60)
                engine = create_llm_engine(stack.api_url, key)
                started = time.monotonic()
                group = submit(http, engine, target_locales(args.provider_jobs), B_DOCUMENT)
                while status(http, group) not in TERMINAL:
                    time.sleep(0.5)
                seconds = time.monotonic() - started
                final = status(http, group)
            finally:
                stack.stop()
    finally:
        assert llm.stdin is not None and llm.stdout is not None
        llm.stdin.close()  # the stand-in prints its arrivals and ends
        arrivals = json.loads(llm.stdout.readline() or "[]")
        llm.wait()
    most = max((sum(1 for t in arrivals if s <= t < s + 60) for s in arrivals), default=0)
    return {
        "jobs": args.provider_jobs,
        "limit": args.provider_rpm,
        "calls": len(arrivals),
        "most_in_60s": most,
        "seconds": seconds,
        "status": final,
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(cases: dict[str, dict[str, Any]], provider: dict[str, Any], command: str) -> str:
    lines = [
        "## Fairness between organizations (`bench/fairness.py`)",
        "",
        f"`{command}` on {machine()}. Organization A submits its flood at once; organization B",
        "then sends one-locale groups one after another. Medians of B's latency (POST to the",
        "group's terminal status), idle and during the flood (samples that ended before A's",
        "last group did). Each row is a fresh stack.",
        "",
        "| task-queue fairness | A's flood | flood wall time | B idle | B during the flood "
        "| ratio (target <= 3x) |",
        "|---|---|---|---|---|---|",
    ]
    for name, case in cases.items():
        idle, during = median(case["idle"]), median(case["during"])
        lines.append(
            f"| {name} | {case['flood_jobs']} jobs | {case['flood_seconds']:.1f} s "
            f"| {idle:.2f} s (n={len(case['idle'])}) | {during:.2f} s (n={len(case['during'])}) "
            f"| {during / idle:.1f}x |"
        )
    lines += [
        "",
        f"A provider with `requests_per_minute: {provider['limit']}`, two worker processes, one "
        f"group of {provider['jobs']} one-call jobs ({provider['status']} in "
        f"{provider['seconds']:.0f} s): the stand-in received {provider['calls']} requests, at "
        f"most **{provider['most_in_60s']} in any 60 s** (limit {provider['limit']}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=4, help="A's groups (default 4)")
    parser.add_argument("--locales", type=int, default=100, help="locales per A group (100)")
    parser.add_argument("--samples", type=int, default=5, help="B's idle samples (5)")
    parser.add_argument("--llm-latency", type=float, default=0.5, help="seconds per LLM call")
    parser.add_argument("--provider-rpm", type=int, default=30, help="provider limit (30)")
    parser.add_argument("--provider-jobs", type=int, default=45, help="one-call jobs (45)")
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md section")
    args = parser.parse_args()
    cases = {
        "off (first come, first served)": run_case(False, args),
        "on (a key per organization)": run_case(True, args),
    }
    provider = provider_case(args)
    command = "python -m bench.fairness " + " ".join(sys.argv[1:])
    section = report(cases, provider, command.strip())
    print(section)
    if args.write:
        write_section(args.write, "fairness", section)


if __name__ == "__main__":
    main()
