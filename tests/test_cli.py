"""The ``tolk`` command line itself, run as a real subprocess on a fresh SQLite database (no
Temporal): every command is listed, usage and configuration errors are one line with exit
status 2, failures one line with 1, and the admin commands keep their documented output."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import stack_settings

TOLK_SCRIPT = Path(sys.executable).parent / "tolk"
OPERATOR_COMMANDS = ("dev", "worker", "api", "orgs", "keys", "engines", "groups")


def environment(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"TOLK_DEBUG", "CI"}}
    return {**env, **stack_settings(root), **extra}


def tolk(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True
    )


def ok(env: dict[str, str], *args: str) -> str:
    done = tolk(env, *args)
    assert done.returncode == 0, done
    return done.stdout


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    """Exit status ``code``, nothing on stdout, one line on stderr naming each of ``names``."""
    assert done.returncode == code, done
    assert done.stdout == "", done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path)


def test_help_lists_every_command(env: dict[str, str]) -> None:
    if not TOLK_SCRIPT.exists():
        pytest.skip("the tolk script is not installed in this environment")
    done = subprocess.run([str(TOLK_SCRIPT), "--help"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done
    for command in OPERATOR_COMMANDS:
        assert f" {command} " in done.stdout, done.stdout
    for group, commands in {
        "orgs": ["create"],
        "keys": ["create", "list", "revoke"],
        "engines": ["create"],
        "groups": ["retry", "cancel", "reconcile"],
    }.items():
        text = ok(env, group, "-h")
        for command in commands:
            assert f" {command} " in text, text


def test_no_command_shows_the_help_and_exits_2(env: dict[str, str]) -> None:
    for args in ([], ["keys"]):
        done = tolk(env, *args)
        assert done.returncode == 2, done
        assert "Usage: tolk" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["keys", "list", "--bogus"], ["tolk keys list", "--bogus"]),
        (["nope"], ["nope"]),
        (["keys", "create"], ["tolk keys create", "--org"]),
        (["orgs", "create"], ["tolk orgs create", "NAME"]),
        (["orgs", "create", "Acme", "Extra"], ["Extra"]),
        (["groups", "reconcile", "--max-age", "soon"], ["--max-age"]),
        (["engines", "create", "--org", "org_x", "--name", "x", "--models", "[{"], ["--models"]),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(
    env: dict[str, str], args: list[str], names: list[str]
) -> None:
    assert_one_line(tolk(env, *args), 2, *names)


def test_a_bad_setting_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    env = environment(tmp_path, TOLK_API_PORT="eighty")
    assert_one_line(tolk(env, "keys", "list"), 2, "TOLK_API_PORT")


def test_keys_create_for_an_unknown_org_fails_cleanly(env: dict[str, str]) -> None:
    done = tolk(env, "keys", "create", "--org", "org_AAAAAAAAAAAAAAAA")
    line = assert_one_line(done, 1, "org_AAAAAAAAAAAAAAAA")
    assert line == "unknown organization org_AAAAAAAAAAAAAAAA"
    engine = tolk(env, "engines", "create", "--org", "org_AAAAAAAAAAAAAAAA", "--name", "x")
    assert_one_line(engine, 1, "unknown organization org_AAAAAAAAAAAAAAAA")


def test_orgs_and_keys_round_trip(env: dict[str, str]) -> None:
    org = ok(env, "orgs", "create", "Initech").strip()
    assert org.startswith("org_") and len(org) == 20
    other = json.loads(ok(env, "orgs", "create", "Hooli", "--json"))
    assert other["name"] == "Hooli" and other["id"].startswith("org_")

    created = json.loads(
        ok(env, "keys", "create", "--org", org, "--email", "ops@initech.test", "--json")
    )
    assert set(created) == {"key", "organizationId", "email"}
    assert created["organizationId"] == org and created["email"] == "ops@initech.test"
    key = created["key"]
    plain_key = ok(env, "keys", "create", "--org", other["id"]).strip()
    assert plain_key.startswith("tolk_") and plain_key != key

    listed = json.loads(ok(env, "keys", "list", "--org", org, "--json"))
    assert [(k["id"], k["organizationId"], k["email"], k["revokedAt"]) for k in listed] == [
        (key[:13], org, "ops@initech.test", None)
    ]
    assert set(listed[0]) == {"id", "organizationId", "email", "createdAt", "revokedAt"}
    everyone = json.loads(ok(env, "keys", "list", "--json"))
    assert {k["id"] for k in everyone} == {key[:13], plain_key[:13]}
    # Not a terminal: the plain lines, never the secret part.
    plain = ok(env, "keys", "list", "--org", org)
    assert plain == f"{key[:13]}  {org}  ops@initech.test  {listed[0]['createdAt']}  live\n"
    assert key not in ok(env, "keys", "list")

    assert ok(env, "keys", "revoke", key[:13]) == f"revoked {key[:13]}\n"
    revoked = json.loads(ok(env, "keys", "revoke", key, "--json"))  # the whole key, again
    assert revoked["id"] == key[:13] and revoked["revokedAt"] is not None
    (after,) = json.loads(ok(env, "keys", "list", "--org", org, "--json"))
    assert after == revoked
    assert ok(env, "keys", "list", "--org", org).endswith(f"revoked {revoked['revokedAt']}\n")
    assert_one_line(tolk(env, "keys", "revoke", "tolk_00000000"), 1, "unknown API key")


def run_on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ``tolk`` with its stdout on a pseudo-terminal: its exit status and output."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        code = proc.wait()
    return code, b"".join(chunks).decode()


def test_keys_list_is_a_table_at_a_terminal_and_plain_under_ci(env: dict[str, str]) -> None:
    org = ok(env, "orgs", "create", "Acme").strip()
    key = ok(env, "keys", "create", "--org", org).strip()
    wide = {**env, "COLUMNS": "200"}
    code, table = run_on_a_terminal(wide, "keys", "list")
    assert code == 0, table
    assert "organization" in table and key[:13] in table and org in table
    assert "live" in table and key not in table
    code, plain = run_on_a_terminal({**wide, "CI": "true"}, "keys", "list")
    assert code == 0, plain
    assert plain.startswith(f"{key[:13]}  {org}  admin@localhost  ")
    code, as_json = run_on_a_terminal(wide, "keys", "list", "--json")
    assert code == 0 and json.loads(as_json)[0]["id"] == key[:13]


def test_an_unexpected_error_is_one_line_unless_tolk_debug(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is no SQLite file\n" * 200)
    env = environment(tmp_path, TOLK_DATABASE_URL=f"sqlite+aiosqlite:///{broken}")
    line = assert_one_line(tolk(env, "keys", "list"), 1, "DatabaseError")
    assert "TOLK_DEBUG=1" in line
    debug = tolk({**env, "TOLK_DEBUG": "1"}, "keys", "list")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
