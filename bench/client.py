"""The file client's cost: ``tolk push --watch`` on a project, next to the same strings sent
through the API directly (the baseline: POST, poll the group, GET each job).

    python -m bench.client [--keys 2000] [--write BENCHMARKS.md]

Starts its own stack on free ports (dev server, worker, API; the offline pseudo engine), then
on a project with one JSON file of ``--keys`` strings and three targets measures, each three
times on a fresh copy: the baseline; ``tolk push --watch`` from nothing; a second push with
nothing changed; a push after one string changed and one was added; ``tolk status``; and
``tolk --help`` (the start-up of the command itself). Wall times of whole commands, as a
user sees them. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import machine, temporary_stack, write_section
from stack import Stack

TARGETS = ["de", "fr", "ja"]
ROUNDS = 3


def document(keys: int) -> dict[str, Any]:
    """A locale file of ``keys`` strings, 50 per section, with placeholders and markup."""
    sections: dict[str, Any] = {}
    for i in range(keys):
        sections.setdefault(f"section{i // 50}", {})[f"line{i % 50}"] = (
            f"Line {i}: {{user}} has <b>%d</b> new items"
        )
    return sections


def flat(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, path + "."))
        else:
            out[path] = value
    return out


def make_project(root: Path, data: dict[str, Any]) -> None:
    (root / "locales").mkdir(parents=True)
    (root / "locales" / "en.json").write_text(json.dumps(data, indent=2) + "\n")
    (root / "tolk.yaml").write_text(
        f"source: en\ntargets: [{', '.join(TARGETS)}]\n"
        "buckets:\n  - format: json\n    path: locales/[locale].json\n"
    )


def tolk(root: Path, stack: Stack, key: str, *args: str) -> tuple[float, str]:
    env = {**os.environ, "TOLK_API_URL": stack.api_url, "TOLK_API_KEY": key, "CI": "true"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1) or (done.returncode == 1 and args[0] != "status"):
        raise SystemExit(f"tolk {' '.join(args)} failed: {done.stderr}")
    return elapsed, done.stdout


def baseline(stack: Stack, key: str, data: dict[str, str]) -> float:
    """What the client does, by hand: one POST, poll the group, GET every job's output."""
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60) as http:
        started = time.perf_counter()
        created = http.post(
            "/jobs/localization",
            json={"sourceLocale": "en", "targetLocales": TARGETS, "data": data},
        ).json()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            group = http.get(f"/jobs/localization/groups/{created['groupId']}").json()
            if group["status"] in ("completed", "partial", "failed", "cancelled"):
                break
            time.sleep(0.05)
        for job in group["jobs"]:
            http.get(f"/jobs/localization/{job['id']}").json()["outputData"]
        return time.perf_counter() - started


def digest(root: Path) -> str:
    files = sorted(p for p in root.rglob("*") if p.is_file() and ".tolk" not in p.parts)
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def run(stack: Stack, key: str, keys: int, work: Path) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    sent: dict[str, int] = {}
    unchanged = True
    for round_ in range(ROUNDS):
        # Each round's strings differ, so no request replays an earlier round's group.
        data = {"round": f"Round {round_}", **document(keys - 1)}
        samples.setdefault("baseline", []).append(baseline(stack, key, flat(data)))
        root = work / f"project{round_}"
        make_project(root, data)
        elapsed, out = tolk(root, stack, key, "push", "--watch", "--json")
        samples.setdefault("push --watch, from nothing", []).append(elapsed)
        sent["push --watch, from nothing"] = json.loads(out)["sentStrings"]
        before = digest(root)
        elapsed, out = tolk(root, stack, key, "push", "--json")
        samples.setdefault("push, nothing changed", []).append(elapsed)
        sent["push, nothing changed"] = json.loads(out)["sentStrings"]
        unchanged = unchanged and digest(root) == before
        elapsed, _ = tolk(root, stack, key, "status")
        samples.setdefault("status, nothing stale", []).append(elapsed)
        source = root / "locales" / "en.json"
        edited = json.loads(source.read_text())
        edited["section0"]["line0"] = "Changed line"
        edited["section0"]["added"] = "Added line"
        source.write_text(json.dumps(edited, indent=2) + "\n")
        elapsed, out = tolk(root, stack, key, "push", "--watch", "--json")
        samples.setdefault("push --watch, 1 changed + 1 added", []).append(elapsed)
        sent["push --watch, 1 changed + 1 added"] = json.loads(out)["sentStrings"]
        elapsed, _ = tolk(root, stack, key, "--help")
        samples.setdefault("tolk --help (start-up)", []).append(elapsed)
        shutil.rmtree(root)
    return {"samples": samples, "sent": sent, "unchanged": unchanged, "keys": keys}


def report(figures: dict[str, Any], command: str) -> str:
    lines = [
        "## File client (`bench/client.py`)",
        "",
        f"`{command}` on {machine()}. One JSON file of {figures['keys']:,} strings "
        f"(placeholders and markup), targets {', '.join(TARGETS)}, the pseudo engine; "
        f"median and max of {ROUNDS} runs, wall time of the whole command. The baseline sends "
        "the same strings through the API by hand (POST, poll the group every 50 ms, GET each "
        "job); the client adds reading and writing the files, the lock and the run file, and "
        "its own start-up (the last row).",
        "",
        "| | median | max | strings sent |",
        "|---|---|---|---|",
    ]
    for name, values in figures["samples"].items():
        sent = figures["sent"].get(name)
        lines.append(
            f"| {name} | {statistics.median(values):.2f} s | {max(values):.2f} s | "
            f"{'' if sent is None else f'{sent:,}'} |"
        )
    lines += [
        "",
        "A push with nothing changed left every byte of the project as it was: "
        f"{'yes' if figures['unchanged'] else 'NO'}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=2000, help="strings in the locale file")
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    command = "python -m bench.client " + " ".join(sys.argv[1:])
    with temporary_stack() as (stack, key, root):
        figures = run(stack, key, args.keys, root)
    section = report(figures, command.strip())
    print(section)
    if args.write:
        write_section(args.write, "client", section)


if __name__ == "__main__":
    main()
