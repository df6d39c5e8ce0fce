"""Processes outlive outages and leave nothing behind: a worker or API started while Temporal
is down waits for it; a stack rides out a Temporal restart; ``tolk dev`` restarts a child
that dies and takes every child along when it is SIGKILLed; a worker whose activity ignores
cancellation still exits after its grace period.

Each test runs its own stack (it stops components), with short grace periods and retry
caps. No timed assertions: every limit below only catches a hang."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import DEV_SERVER_HTTP_OFFSET, Stack, ephemeral_ports, free_port
from tests.conftest import new_org_key, stack_settings, wait_for_group
from tests.stuck_worker import STUCK_WORKFLOW
from worker import EXIT_FORCED

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 120.0  # seconds; a safety limit against hangs, never a speed requirement


def settings_in(root: Path) -> dict[str, str]:
    """Free ports and files in ``root``; short grace periods and retry caps."""
    return stack_settings(
        root,
        TOLK_WORKER_GRACEFUL_SHUTDOWN_SECONDS="1",
        TOLK_API_GRACEFUL_SHUTDOWN_SECONDS="1",
        TOLK_TEMPORAL_CONNECT_RETRY_MAX_SECONDS="1",
        TOLK_DATABASE_CONNECT_RETRY_MAX_SECONDS="1",
    )


def own_stack(root: Path) -> Stack:
    return Stack(settings_in(root), log_dir=root / "logs", headless=True)


def logs(root: Path) -> str:
    """The last lines of every log in ``root``, for failure messages."""
    tails = []
    for path in sorted(root.rglob("*.log")):
        lines = path.read_text(errors="replace").splitlines()[-15:]
        tails.append(f"--- {path.name}\n" + "\n".join(lines))
    return "\n".join(tails)


def assert_running(stack: Stack, root: Path) -> None:
    exited = {name: p.returncode for name, p in stack.procs.items() if p.poll() is not None}
    assert not exited, f"exited: {exited}\n{logs(root)}"


def wait_until(condition: Callable[[], Any], what: str, root: Path) -> Any:
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not within {LIMIT:.0f} s: {what}\n{logs(root)}")


def group(key: str, strings: int = 3, locales: tuple[str, ...] = ("de", "fr")) -> dict[str, Any]:
    return {
        "sourceLocale": "en",
        "targetLocales": list(locales),
        "idempotencyKey": key,
        "data": {f"line{i}": f"Line {i} for {{name}}" for i in range(strings)},
    }


def accept(client: httpx.Client, body: dict[str, Any], root: Path) -> str:
    """POST until 202; a 503 (Temporal not back yet) is retried with the same key."""

    def post() -> str | None:
        resp = client.post("/jobs/localization", json=body)
        if resp.status_code == 503:
            assert resp.headers.get("Retry-After"), resp.headers
            return None
        assert resp.status_code == 202, resp.text
        group_id: str = resp.json()["groupId"]
        return group_id

    result: str = wait_until(post, f"group {body['idempotencyKey']} accepted", root)
    return result


def assert_unavailable(resp: httpx.Response, names: str = "") -> None:
    assert resp.status_code == 503, resp.text
    assert resp.json()["_tag"] == "ServiceUnavailableError", resp.text
    assert names in resp.json()["message"]
    assert int(resp.headers["Retry-After"]) > 0


def test_worker_and_api_started_while_temporal_is_down_wait_for_it(tmp_path: Path) -> None:
    stack = own_stack(tmp_path)
    try:
        _org, key = new_org_key(stack, "Early")
        stack.start_worker()
        stack.start_api(ready=False)  # serves /healthz; /readyz cannot be 200 yet
        with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30) as c:
            assert c.get("/healthz").status_code == 200
            assert_unavailable(c.get("/readyz"), "Temporal unreachable")
            # A group may be accepted into the outbox (its workflow started later); once
            # the API knows Temporal is away, POSTs are refused with 503 and Retry-After.
            accepted = []
            for attempt in range(3):
                resp = c.post("/jobs/localization", json=group(f"early-{attempt}"))
                if resp.status_code != 202:
                    assert_unavailable(resp)
                    break
                accepted.append(resp.json()["groupId"])
            else:
                raise AssertionError("no 503 while Temporal is down")
            time.sleep(3)  # a few of the worker's connect attempts
            assert_running(stack, tmp_path)

            stack.start_temporal()
            accepted.append(accept(c, group("first"), tmp_path))
            for group_id in accepted:
                finished = wait_for_group(c, group_id, timeout=LIMIT)
                assert finished["status"] == "completed", finished
            assert c.get("/readyz").status_code == 200
            assert_running(stack, tmp_path)
    finally:
        stack.stop()


def test_temporal_restarted_under_a_running_stack_loses_no_accepted_group(
    tmp_path: Path,
) -> None:
    stack = own_stack(tmp_path)
    try:
        stack.start()
        _org, key = new_org_key(stack, "Outage")
        headers = {"X-API-Key": key}
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as c:
            accepted = [
                accept(c, group("before", strings=400, locales=("de", "fr", "ja")), tmp_path)
            ]

            stack.kill("temporal", signal.SIGTERM)
            during: dict[str, httpx.Response] = {}

            def submit_during() -> None:  # the API retries the start a while, then 503
                with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as c2:
                    during["resp"] = c2.post("/jobs/localization", json=group("during"))

            submitter = threading.Thread(target=submit_during)
            submitter.start()
            stack.start_worker("worker-2")  # a worker (re)started while Temporal is away
            assert_unavailable(c.get("/readyz"), "Temporal unreachable")
            time.sleep(5)
            assert_running(stack, tmp_path)

            stack.start_temporal()
            submitter.join(LIMIT)
            if during["resp"].status_code == 202:
                accepted.append(during["resp"].json()["groupId"])
            else:
                assert_unavailable(during["resp"])
            accepted.append(accept(c, group("after"), tmp_path))

            for group_id in accepted:
                finished = wait_for_group(c, group_id, timeout=LIMIT)
                assert finished["status"] == "completed", finished
        assert_running(stack, tmp_path)
        assert set(stack.procs) == {"temporal", "worker", "worker-2", "api"}
    finally:
        stack.stop()


# --- tolk dev ------------------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process from /proc, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def children(pid: int) -> dict[int, str]:
    """The live children of ``pid``: their command lines by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is not None and stat[1] == pid and stat[0] != "Z":
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            found[int(entry.name)] = cmdline
    return found


def descendants(pid: int) -> dict[int, int]:
    """Every live descendant of ``pid``: its start time by pid (to tell a reused pid)."""
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            stat = proc_stat(child)
            if stat is not None:
                found[child] = stat[2]
                todo.append(child)
    return found


def still_alive(processes: dict[int, int]) -> dict[int, int]:
    alive = {}
    for pid, started in processes.items():
        stat = proc_stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == started:
            alive[pid] = started
    return alive


def test_tolk_dev_restarts_a_dead_child_and_takes_every_child_along_when_killed(
    tmp_path: Path,
) -> None:
    env = {**os.environ, **settings_in(tmp_path)}
    with open(tmp_path / "dev.log", "wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    leftovers: dict[int, int] = {}
    try:
        wait_until(
            lambda: b"Tolk is running." in (tmp_path / "dev.log").read_bytes(),
            "tolk dev started",
            tmp_path,
        )
        first = children(dev.pid)
        assert len(first) == 3, first  # Temporal, worker, API
        (worker_pid,) = (pid for pid, cmd in first.items() if "cli.main worker" in cmd)

        os.kill(worker_pid, signal.SIGKILL)
        wait_until(
            lambda: (
                [p for p, cmd in children(dev.pid).items() if "cli.main worker" in cmd]
                and worker_pid not in children(dev.pid)
            ),
            "the worker restarted",
            tmp_path,
        )
        assert dev.poll() is None, (tmp_path / "dev.log").read_text()
        key = (tmp_path / "var" / "dev-api-key").read_text().strip()
        api_url = f"http://127.0.0.1:{env['TOLK_API_PORT']}"
        with httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=30) as c:
            group_id = accept(c, group("after-restart"), tmp_path)
            assert wait_for_group(c, group_id, timeout=LIMIT)["status"] == "completed"

        leftovers = descendants(dev.pid)  # the restarted worker among them
        assert len(leftovers) >= 3, leftovers
        dev.kill()
        dev.wait(LIMIT)
        wait_until(lambda: not still_alive(leftovers), "every child of tolk dev gone", tmp_path)
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        for pid in still_alive(leftovers):  # leave nothing behind, even on failure
            os.kill(pid, signal.SIGKILL)


# --- a worker that cannot finish -----------------------------------------------------------


async def start_stuck_workflow(stack: Stack, marker: Path) -> None:
    from temporalio.client import Client

    s = stack.settings
    client = await Client.connect(s.temporal_target, namespace=s.temporal_namespace)
    await client.start_workflow(
        STUCK_WORKFLOW, str(marker), id="stuck", task_queue=s.worker_task_queue
    )


def test_a_worker_whose_activity_ignores_cancellation_still_exits_after_its_grace(
    tmp_path: Path,
) -> None:
    stack = own_stack(tmp_path)
    try:
        stack.start_temporal()
        worker = stack._spawn("worker-stuck", [sys.executable, "-m", "tests.stuck_worker"])
        marker = tmp_path / "activity-running"
        asyncio.run(start_stuck_workflow(stack, marker))
        wait_until(marker.exists, "the stuck activity running", tmp_path)

        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(LIMIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker still runs {LIMIT:.0f} s after SIGTERM\n{logs(tmp_path)}")
        assert code == EXIT_FORCED, logs(tmp_path)
        assert "graceful shutdown did not finish" in logs(tmp_path)
    finally:
        stack.stop()


def test_free_ports_are_below_the_range_outgoing_connections_take_theirs_from() -> None:
    """A port from the ephemeral range can be taken by any connection before its server
    binds it (a dev server once failed to start so in a busy run)."""
    low, _high = ephemeral_ports()
    ports = [free_port() for _ in range(50)]
    assert all(port + DEV_SERVER_HTTP_OFFSET < low for port in ports), ports
