"""The file client when things go wrong: a flaky network, a refused WebSocket, late runs,
failed jobs, files from elsewhere and two commands at once. Each test runs the real ``tolk``
against the real stack; the faults come from an HTTP proxy in between (tests/httpfault.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import Stack
from tests.conftest import broken_engine, wait_for_group
from tests.httpfault import HttpFaultProxy
from tests.test_client import PROJECT, check_targets, org, project, small_project, tolk

__all__ = ["org", "project"]  # fixtures used here

pytestmark = pytest.mark.stack


def api_proxy(stack: Stack) -> HttpFaultProxy:
    """A fault proxy in front of the stack's API."""
    return HttpFaultProxy(int(stack.api_url.rsplit(":", 1)[1]))


def hello_project(tmp_path: Path) -> Path:
    """A project of one English string, "Hello"."""
    return small_project(tmp_path / "app", {"en.json": '{"title": "Hello"}\n'})


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_two_files_with_the_same_strings_are_two_groups_and_both_land(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    same = '{"title": "Same words"}\n'
    root = small_project(tmp_path / "app", {"en/a.json": same, "en/b.json": same})
    result = tolk(root, key, stack.api_url, "push", "--watch", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    answer = json.loads(result.stdout)
    assert len({g["groupId"] for g in answer["groups"]}) == 2
    for locale in ("de", "fr"):
        for name in ("a", "b"):
            assert read(root / "locales" / locale / f"{name}.json")["title"] != "Same words"


def test_a_job_that_cannot_be_read_once_is_landed_when_it_can(
    stack: Stack, org: tuple[str, httpx.Client], project: Path
) -> None:
    key, _ = org
    pushed = tolk(project, key, stack.api_url, "push", "--json")
    assert pushed.returncode == 0, pushed.stderr
    with api_proxy(stack) as proxy:
        fault = proxy.rule(r"GET /jobs/localization/ljb_\w+ ", 500, each=True)
        watched = tolk(project, key, proxy.url, "watch", "--json")
    assert fault.hits > 0
    assert watched.returncode == 0, watched.stderr + watched.stdout
    answer = json.loads(watched.stdout)
    assert answer["done"] is True and all(job["written"] for job in answer["jobs"])
    check_targets(project)


def test_a_refused_websocket_falls_back_to_server_sent_events(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    root = hello_project(tmp_path)
    with api_proxy(stack) as proxy:
        refused = proxy.rule(r"(?i)upgrade: websocket", 403, times=1000)
        result = tolk(root, key, proxy.url, "push", "--watch", "--json")
    assert refused.hits > 0
    assert result.returncode == 0, result.stderr + result.stdout
    assert read(root / "locales" / "de.json")["title"] != "Hello"


def test_a_429_with_retry_after_is_waited_out(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    root = hello_project(tmp_path)
    with api_proxy(stack) as proxy:
        limited = proxy.rule(r"POST /jobs/localization ", 429, headers={"Retry-After": "1"})
        result = tolk(root, key, proxy.url, "push", "--json")
    assert limited.hits == 1
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sentStrings"] == 1


def test_a_late_run_does_not_replace_a_newer_translation(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, http = org
    root = small_project(tmp_path / "app", {"en.json": '{"title": "Version one"}\n'})
    first = json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)
    (root / "locales" / "en.json").write_text('{"title": "Version two"}\n', encoding="utf-8")
    second = json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)
    for group in first["groups"] + second["groups"]:
        wait_for_group(http, group["groupId"])
    assert tolk(root, key, stack.api_url, "pull", second["run"]).returncode == 0
    newer = read(root / "locales" / "de.json")["title"]
    assert "Ṽéŕšíöñ ţŵö" in newer
    late = tolk(root, key, stack.api_url, "pull", first["run"], "--json")
    assert late.returncode == 0, late.stderr
    assert read(root / "locales" / "de.json")["title"] == newer
    status = tolk(root, key, stack.api_url, "status", "--json")
    assert status.returncode == 0, status.stdout


def test_a_changed_locked_key_reaches_the_targets_without_a_request(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    root = small_project(tmp_path / "app", {"en.json": '{"id": "one", "title": "Hello"}\n'})
    assert tolk(root, key, stack.api_url, "push", "--watch").returncode == 0
    (root / "locales" / "en.json").write_text('{"id": "two", "title": "Hello"}\n')
    status = tolk(root, key, stack.api_url, "status", "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["tidy"]
    result = tolk(root, key, stack.api_url, "push", "--json")
    assert json.loads(result.stdout)["sentStrings"] == 0
    assert read(root / "locales" / "de.json")["id"] == "two"
    assert tolk(root, key, stack.api_url, "status").returncode == 0

    # An untranslatable value added to the source reaches the targets the same way.
    (root / "locales" / "en.json").write_text('{"id": "two", "title": "Hello", "limit": 5}\n')
    assert tolk(root, key, stack.api_url, "status").returncode == 1
    assert json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)["sentStrings"] == 0
    assert read(root / "locales" / "fr.json")["limit"] == 5
    assert tolk(root, key, stack.api_url, "status").returncode == 0


@pytest.mark.parametrize("run_files", ["kept", "gone (a fresh CI checkout)"])
def test_a_failed_job_is_asked_again_by_the_next_push(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path, run_files: str
) -> None:
    """The same strings for the same locale make the same request: the next push must still
    get a new group, not the failed one replayed, with or without this machine's runs."""
    key, http = org
    org_id = http.get("/users/me").json()["organizationId"]
    engine = broken_engine(stack, org_id, "Broken for ja", locale="ja")
    root = small_project(tmp_path / "app", {"en.json": '{"title": "Hello"}\n'}, targets="ja")
    (root / "tolk.yaml").write_text(
        (root / "tolk.yaml").read_text() + f"engine: {engine}\n", encoding="utf-8"
    )
    first = tolk(root, key, stack.api_url, "push", "--watch", "--json")
    assert first.returncode == 1, first.stdout
    assert [j["status"] for j in json.loads(first.stdout)["jobs"]] == ["failed"]
    if run_files != "kept":
        shutil.rmtree(root / ".tolk")
    again = tolk(root, key, stack.api_url, "push", "--json")
    answer = json.loads(again.stdout)
    assert answer["sentStrings"] == 1
    (group,) = answer["groups"]
    assert group["groupId"] not in {g["groupId"] for g in json.loads(first.stdout)["groups"]}
    assert wait_for_group(http, group["groupId"])["status"] == "failed"  # asked, not replayed


def test_a_run_file_from_elsewhere_cannot_write_outside_the_project(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    root = hello_project(tmp_path)
    pushed = json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)
    run_file = root / ".tolk" / "runs" / f"{pushed['run']}.json"
    run = json.loads(run_file.read_text())
    run["groups"][0]["jobs"][0]["locale"] = "../../../escaped"
    run["groups"][0]["jobs"][0]["path"] = "../../../escaped.json"
    run_file.write_text(json.dumps(run))
    result = tolk(root, key, stack.api_url, "pull", pushed["run"])
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("escaped*"))


def test_two_pulls_at_once_keep_both_in_the_lock(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, http = org
    root = small_project(tmp_path / "app", {"en.json": '{"a": "One", "b": "Two", "c": "Three"}\n'})
    runs = []
    for locale in ("de", "fr"):
        pushed = json.loads(
            tolk(root, key, stack.api_url, "push", "--targets", locale, "--json").stdout
        )
        runs.append(pushed["run"])
        wait_for_group(http, pushed["groups"][0]["groupId"])
    env = {**os.environ, "TOLK_API_URL": stack.api_url, "TOLK_API_KEY": key, "CI": "true"}
    pulls = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "pull", run],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for run in runs
    ]
    try:
        assert [p.wait(timeout=120) for p in pulls] == [0, 0]
    finally:  # a failed assertion must not leave a client running
        for p in pulls:
            if p.poll() is None:
                p.kill()
                p.wait()
    status = tolk(root, key, stack.api_url, "status", "--json")
    assert status.returncode == 0, status.stdout


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ('{"version": 1, "files": {"locales/en.json": []}}', "tolk.lock"),
        ("not json", "tolk.lock: not valid JSON"),
        ('{"version": 7, "files": {}}', "unknown lock version"),
    ],
)
def test_a_broken_lock_exits_2_with_one_line(tmp_path: Path, lock: str, message: str) -> None:
    root = tmp_path / "app"
    shutil.copytree(PROJECT, root)
    (root / "tolk.lock").write_text(lock, encoding="utf-8")
    result = tolk(root, "tolk_unused", "http://127.0.0.1:9", "status")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_targets_are_given_in_any_case(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    root = hello_project(tmp_path)
    result = tolk(root, key, stack.api_url, "push", "--targets", "DE", "--json")
    assert result.returncode == 0, result.stderr
    assert [g["targetLocales"] for g in json.loads(result.stdout)["groups"]] == [["de"]]
    unknown = tolk(root, key, stack.api_url, "push", "--targets", "ja")
    assert unknown.returncode == 2 and "not targets of tolk.yaml: ja" in unknown.stderr


@pytest.mark.parametrize("command", ["pull", "watch"])
def test_a_group_the_server_does_not_know_ends_the_run_and_is_asked_again(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path, command: str
) -> None:
    key, _ = org
    root = small_project(tmp_path / "app", {"en.json": '{"title": "Hello"}\n'}, targets="de")
    pushed = json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)
    run_file = root / ".tolk" / "runs" / f"{pushed['run']}.json"
    run = json.loads(run_file.read_text())
    run["groups"][0]["group_id"] = "ljg_0000000000000000"  # e.g. a run file from elsewhere
    run_file.write_text(json.dumps(run))
    stuck = tolk(root, key, stack.api_url, "push", "--json")
    assert json.loads(stuck.stdout)["sentStrings"] == 0  # still in flight, as far as we know

    ended = tolk(root, key, stack.api_url, command, "--json")
    assert ended.returncode == 1, ended.stderr
    answer = json.loads(ended.stdout)
    assert answer["done"] is True and [j["status"] for j in answer["jobs"]] == ["missing"]
    again = json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)
    assert again["sentStrings"] == 1


def test_runs_land_when_buckets_move_and_a_removed_bucket_ends_missing(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, http = org
    root = tmp_path / "app"
    shutil.copytree(PROJECT, root)
    pushed = json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)
    for group in pushed["groups"]:
        wait_for_group(http, group["groupId"])
    config = root / "tolk.yaml"
    text = config.read_text()
    json_bucket = '  - format: json\n    path: locales/[locale].json\n    lockedKeys: ["**.id"]\n'
    props = "  - format: properties\n    path: src/messages_[locale].properties\n"
    assert json_bucket in text and props in text
    config.write_text(text.replace(json_bucket, "").replace(props, "") + json_bucket)

    pulled = tolk(root, key, stack.api_url, "pull", "--json")
    assert pulled.returncode == 1, pulled.stderr  # the properties jobs: missing
    answer = json.loads(pulled.stdout)
    assert answer["done"] is True
    missing = {(j["path"], j["status"]) for j in answer["jobs"] if j["status"] != "completed"}
    assert missing == {
        (f"src/messages_{lang}.properties", "missing") for lang in ("de", "pl", "ja")
    }
    assert read(root / "locales" / "pl.json")["app"]["title"] != "Welcome, {name}!"
    assert "pl" in (root / "strings.csv").read_text().splitlines()[0]


def test_nothing_is_tidied_while_its_translations_are_on_their_way(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    root = tmp_path / "app"
    shutil.copytree(PROJECT, root)
    assert tolk(root, key, stack.api_url, "push").returncode == 0
    status = json.loads(tolk(root, key, stack.api_url, "status", "--json").stdout)
    assert status["tidy"] == {} and status["stale"] == {} and len(status["runs"]) == 1
    assert json.loads(tolk(root, key, stack.api_url, "push", "--json").stdout)["sentStrings"] == 0
    assert not (root / "locales" / "de.json").exists()  # no skeleton before the translation
