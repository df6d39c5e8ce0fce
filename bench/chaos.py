"""Chaos: nothing accepted is lost while every process of the stack is SIGKILLed.

    python -m bench.chaos [--groups 100] [--locales 5] [--runs 1] [--write BENCHMARKS.md]

Starts its own stack from components on free ports in a temp dir (Temporal dev server, two
workers, the API; jobs go through the local LLM stand-in, so translations are in flight
when a worker dies) and a real HTTPS webhook receiver on loopback (a test CA the workers
trust). A client submits the groups at a steady rate, each with a ``callbackUrl`` and an
``idempotencyKey``; some keys by two racing clients. Every client retries a failed POST
(5xx, connection error, timeout) with the same key and body until it is accepted.
Meanwhile a worker is SIGKILLed every few seconds and restarted, the API once, the
Temporal dev server once (restarted on the same port and database file after a few
seconds down), and the receiver answers 503 for a moment. Then the run waits for the
drain: every accepted group terminal by GET and every job's webhook received.

Checked after the drain (any failure: exit status 1, with a diagnosis naming the group,
the job, its GET bodies, the webhooks it got, and the components' log lines):

- every key was accepted, and every 202 for one key carried one group id and one set of
  job ids, which GET returns too (a final replay of every key as well);
- every accepted job is terminal, completed, and its output has the source's structure;
- every job got at least one webhook answered 2xx, all with one ``webhook-id`` and a valid
  signature, of one event type that agrees with the job's status;
- no job has two terminal states: one webhook type per job, one terminal event per job in
  the group's event log (its SSE replay), never seen going back from terminal;
- no component exited without being killed (it is restarted, and counted);
- no workflow execution failed, and none runs for a group or job never accepted.

Only loopback addresses are used; every loop is bounded in time.
"""

# This module runs the whole and holds the command line; the parts are chaos_config (the
# knobs and the stack's settings), chaos_load (the client: the burst, then the drain),
# chaos_faults (the kills), chaos_records (what is seen), chaos_checks (the invariants),
# chaos_report (figures, diagnosis, the BENCHMARKS.md section), chaos_evidence (how
# findings are written).

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import trustme

from bench.chaos_checks import check, collect, read_database
from bench.chaos_config import RECEIVER_HOST, Config, stack_overrides
from bench.chaos_faults import Chaos
from bench.chaos_load import Client
from bench.chaos_records import Checked, Faults, Result
from bench.chaos_report import diagnose, figures_of, print_figures, report
from bench.common import own_stack, write_section
from bench.progress import create_llm_engine, start_llm
from stack import Stack
from tests.receiver import Receiver


def run_chaos(config: Config, root: Path) -> Result:
    """One chaos run on a fresh stack in ``root`` (logs stay in root/logs)."""
    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca_file = root / "webhook-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    overrides = stack_overrides(ca_file)
    llm: subprocess.Popen[str] | None = None
    stack: Stack | None = None
    with Receiver(ca, host=RECEIVER_HOST) as receiver:
        try:
            if config.llm_latency > 0:
                llm, base_url = start_llm(config.llm_latency)
                overrides["TOLK_LLM_PROVIDERS"] = json.dumps(
                    {"bench": {"type": "openai", "base_url": base_url, "api_key": "test-key"}}
                )
                overrides["TOLK_LLM_TIMEOUT_SECONDS"] = str(max(30.0, 4 * config.llm_latency))
            stack, key = own_stack(root, **overrides)
            engine_id = create_llm_engine(stack.api_url, key) if llm is not None else None
            settings = httpx.get(
                f"{stack.api_url}/webhooks/settings", headers={"X-API-Key": key}, timeout=30
            )
            settings.raise_for_status()
            faults = Faults()
            client = Client(
                stack, key, config, receiver, faults, engine_id, settings.json()["secret"]
            )
            thread = threading.Thread(target=client.thread_main, name="chaos-client", daemon=True)
            thread.start()
            Chaos(stack, config, client, receiver).run()
            thread.join()
            if client.error is not None:
                raise client.error
            client.read_receipts()
            checked = Checked()
            asyncio.run(collect(stack, key, client, checked))
            read_database(stack, checked)
            violations = check(config, client.seen, checked, faults)
            if client.seen.drained_at is None:
                violations.setdefault("drain", []).append(client.seen.stop_reason)
            figures = figures_of(config, client.seen, checked, faults, violations)
            diagnosis = diagnose(stack, client.seen, checked, faults, violations)
            return Result(figures, violations, diagnosis, root)
        finally:
            if stack is not None:
                stack.stop()
            if llm is not None:
                llm.communicate(timeout=10)  # closes its stdin: it stops


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Config()
    parser.add_argument("--groups", type=int, default=defaults.groups)
    parser.add_argument("--locales", type=int, default=defaults.locales, choices=range(1, 13))
    parser.add_argument("--rate", type=float, default=defaults.rate, help="groups per second")
    parser.add_argument("--kill-every", type=float, default=defaults.kill_every)
    parser.add_argument("--temporal-down", type=float, default=defaults.temporal_down)
    parser.add_argument(
        "--llm-latency",
        type=float,
        default=defaults.llm_latency,
        help="seconds per call of the LLM stand-in (0: the built-in pseudo engine)",
    )
    parser.add_argument(
        "--stall-limit",
        type=float,
        default=defaults.stall_limit,
        help="seconds without any progress, after the last fault, that count as a stall",
    )
    parser.add_argument(
        "--late-limit",
        type=float,
        default=defaults.late_limit,
        help="after a stall, seconds more to wait to tell late jobs from lost ones",
    )
    parser.add_argument("--runs", type=int, default=1, help="whole runs, each on a fresh stack")
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, data)")
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    config = Config(
        groups=args.groups,
        locales=args.locales,
        rate=args.rate,
        kill_every=args.kill_every,
        temporal_down=args.temporal_down,
        llm_latency=args.llm_latency,
        stall_limit=args.stall_limit,
        late_limit=args.late_limit,
    )
    command = ("python -m bench.chaos " + " ".join(sys.argv[1:])).strip()
    results = []
    for n in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="tolk-chaos-"))
        result = run_chaos(config, root)
        results.append(result)
        print(f"run {n + 1} of {args.runs}: {'ok' if result.ok else 'INVARIANTS BROKEN'}")
        print_figures(result)
        if not result.ok:
            print(result.diagnosis)
        if result.ok and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs and data kept in {root}")
    section = report(results, config, command)
    print(section)
    if args.write:
        write_section(args.write, "chaos", section)
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
