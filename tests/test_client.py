"""The file client end to end: the real ``tolk`` command on a project with one file of every
format (tests/data/client_project), against the real stack.

Each written target is checked with the format's own tooling or an independent parser
(``msgfmt --check`` for PO, lxml, plistlib, PyYAML, json, csv). What is sent is read from the
server: the groups the organization has and the strings each job carried.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import plistlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import polib
import pytest
import yaml
from lxml import etree
from pyicumessageformat import Parser

from stack import Stack
from tests.conftest import new_org_key, wait_for_group
from tests.fake_llm import FakeLLM
from tests.faultproxy import FaultProxy
from tests.test_cli import run_on_a_terminal

PROJECT = Path(__file__).parent / "data" / "client_project"
TARGETS = ("de", "pl", "ja")
PLURALS = {"de": {"one", "other"}, "pl": {"one", "few", "many", "other"}, "ja": {"other"}}
GETTEXT_FORMS = {"de": 2, "pl": 3, "ja": 1}

ICU = Parser()

pytestmark = pytest.mark.stack


def tolk(
    project: Path, key: str, api: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=project,
        env={**os.environ, "TOLK_API_URL": api, "TOLK_API_KEY": key, "CI": "true", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(project: Path) -> dict[str, str]:
    """Every file of the project but the run records, by path, as a hash of its bytes."""
    return {
        p.relative_to(project).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*"))
        if p.is_file() and ".tolk" not in p.parts
    }


def small_project(root: Path, files: dict[str, str], targets: str = "de, fr") -> Path:
    """A project with one JSON bucket: ``locales/en.json``, or ``locales/en/*.json`` when the
    files are in folders; ``id`` keys are locked."""
    for name, text in files.items():
        path = root / "locales" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    folders = any("/" in name for name in files)
    pattern = "locales/[locale]/*.json" if folders else "locales/[locale].json"
    (root / "tolk.yaml").write_text(
        f"source: en\ntargets: [{targets}]\n"
        f"buckets:\n  - format: json\n    path: {pattern}\n    lockedKeys: [id]\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture()
def org(stack: Stack) -> tuple[str, httpx.Client]:
    _, key = new_org_key(stack, "Files Inc")
    http = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    return key, http


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "app"
    shutil.copytree(PROJECT, root)
    yield root


def group_count(http: httpx.Client) -> int:
    """How many jobs the organization has (every group of these tests has one per target)."""
    seen, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = http.get("/jobs/localization", params=params).json()
        seen += len(page["items"])
        cursor = page["nextCursor"]
        if not cursor:
            return seen


# What each format's own tooling says of a written target: it must not raise.


def check_json(path: Path, locale: str) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["app"]["id"] == "tolk-demo"  # locked, copied verbatim
    forms = {k.removeprefix("files_") for k in data if k.startswith("files_")}
    assert forms == PLURALS[locale]


def check_yaml(path: Path, locale: str) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(data) == [locale]
    assert set(data[locale]["inbox"]) == PLURALS[locale]


def check_po(path: Path, locale: str) -> None:
    result = subprocess.run(
        ["msgfmt", "--check", "-o", os.devnull, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    po = polib.pofile(str(path))
    assert po.metadata["Language"] == locale
    assert f"nplurals={GETTEXT_FORMS[locale]};" in po.metadata["Plural-Forms"].replace(" ", "")
    plural = next(e for e in po if e.msgid_plural)
    assert len(plural.msgstr_plural) == GETTEXT_FORMS[locale]
    assert all(plural.msgstr_plural.values())
    assert all(e.msgstr for e in po if not e.msgid_plural)


def _xml(path: Path) -> Any:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.parse(str(path), parser)


def check_xliff(path: Path, locale: str) -> None:
    tree = _xml(path)
    root = tree.getroot()
    if root.get("version") == "1.2":
        ns = {"x": "urn:oasis:names:tc:xliff:document:1.2"}
        assert tree.find("x:file", ns).get("target-language") == locale
        units = tree.findall(".//x:trans-unit", ns)
        assert units and all((u.findtext("x:target", None, ns) or "").strip() for u in units)
    else:
        ns = {"x": "urn:oasis:names:tc:xliff:document:2.0"}
        assert root.get("trgLang") == locale
        segments = tree.findall(".//x:segment", ns)
        assert segments and all((s.findtext("x:target", None, ns) or "") for s in segments)


def check_android(path: Path, locale: str) -> None:
    root = _xml(path).getroot()
    assert root.find("string[@name='app_name']") is None  # untranslatable: default only
    assert (root.findtext("string[@name='welcome']") or "").strip()
    quantities = {i.get("quantity") for i in root.findall("plurals[@name='songs']/item")}
    assert quantities == PLURALS[locale]
    assert len(root.findall("string-array[@name='planets']/item")) == 2


STRINGS_LINE = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)";$')


def check_strings(path: Path, locale: str) -> None:
    """An independent reader of old-style .strings: comments, then "key" = "value"; lines."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
    pairs = {}
    for line in filter(None, map(str.strip, text.splitlines())):
        match = STRINGS_LINE.match(line)
        assert match, f"not a .strings statement: {line}"
        pairs[match[1]] = match[2]
    assert set(pairs) == {"home.greeting", "home.logout"}
    assert all(pairs.values())


def check_stringsdict(path: Path, locale: str) -> None:
    plist = plistlib.loads(path.read_bytes())
    rule = plist["photos"]["count"]
    assert rule["NSStringFormatSpecTypeKey"] == "NSStringPluralRuleType"
    assert {k for k in rule if not k.startswith("NSString")} == PLURALS[locale]


def check_xcstrings(path: Path, locale: str) -> None:
    catalog = json.loads(path.read_text(encoding="utf-8"))
    assert catalog["sourceLanguage"] == "en"
    done = catalog["strings"]["Done"]["localizations"][locale]["stringUnit"]
    assert done["state"] == "translated" and done["value"]
    plural = catalog["strings"]["%lld comments"]["localizations"][locale]["variations"]["plural"]
    assert set(plural) == PLURALS[locale]


def check_arb(path: Path, locale: str) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["@@locale"] == locale
    assert data["@helloWorld"]["description"].startswith("The conventional")  # kept verbatim
    assert data["helloWorld"]
    (plural,) = [p for p in ICU.parse(data["itemCount"]) if isinstance(p, dict)]
    assert set(plural["options"]) == {"=0"} | PLURALS[locale]  # ICU with the target's forms


def check_properties(path: Path, locale: str) -> None:
    pairs = dict(
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "!"))
    )
    assert set(pairs) == {"login.title", "login.hint"} and all(pairs.values())


def check_csv(path: Path, locale: str) -> None:
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    assert [r["key"] for r in rows] == ["nav.home", "nav.about"]
    assert all(r[locale] for r in rows)


TARGET_FILES: dict[str, Callable[[Path, str], None]] = {
    "locales/{l}.json": check_json,
    "config/locales/{l}.yml": check_yaml,
    "po/{l}.po": check_po,
    "xliff/{l}.xlf": check_xliff,
    "xliff2/{l}.xlf": check_xliff,
    "res/values-{l}/strings.xml": check_android,
    "{l}.lproj/Localizable.strings": check_strings,
    "{l}.lproj/Localizable.stringsdict": check_stringsdict,
    "Localizable.xcstrings": check_xcstrings,
    "lib/l10n/app_{l}.arb": check_arb,
    "src/messages_{l}.properties": check_properties,
    "strings.csv": check_csv,
}


def check_targets(project: Path) -> None:
    for pattern, check in TARGET_FILES.items():
        for locale in TARGETS:
            path = project / pattern.format(l=locale)
            assert path.is_file(), f"{path.relative_to(project)} was not written"
            check(path, locale)


def test_push_watch_writes_every_format_then_a_second_push_changes_nothing(
    stack: Stack, org: tuple[str, httpx.Client], project: Path
) -> None:
    key, http = org
    first = tolk(project, key, stack.api_url, "push", "--watch")
    assert first.returncode == 0, first.stderr + first.stdout
    check_targets(project)
    assert (project / "tolk.lock").is_file()
    jobs = group_count(http)
    assert jobs > 0

    before = snapshot(project)
    again = tolk(project, key, stack.api_url, "push", "--json")
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert answer["sentStrings"] == 0 and answer["run"] is None
    assert snapshot(project) == before
    assert group_count(http) == jobs

    status = tolk(project, key, stack.api_url, "status", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout) == {"stale": {}, "tidy": {}, "runs": []}


def _job_strings(http: httpx.Client, group_id: str) -> list[int]:
    group = http.get(f"/jobs/localization/groups/{group_id}").json()
    return [
        http.get(f"/jobs/localization/{j['id']}").json()["usage"]["strings"] for j in group["jobs"]
    ]


def test_one_changed_and_one_added_string_send_exactly_those_two(
    stack: Stack, org: tuple[str, httpx.Client], project: Path
) -> None:
    key, http = org
    assert tolk(project, key, stack.api_url, "push", "--watch").returncode == 0
    source = project / "locales" / "en.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    data["app"]["title"] = "Welcome back, {name}!"
    data["app"]["cancel"] = "Cancel"
    source.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    before = snapshot(project)
    de_before = json.loads((project / "locales/de.json").read_text(encoding="utf-8"))

    result = tolk(project, key, stack.api_url, "push", "--watch", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["sentStrings"] == 2
    assert len(answer["groups"]) == 1
    assert _job_strings(http, answer["groups"][0]["groupId"]) == [2, 2, 2]

    de = json.loads((project / "locales/de.json").read_text(encoding="utf-8"))
    assert de["app"]["cancel"] and de["app"]["title"] != de_before["app"]["title"]
    assert de["app"]["save"] == de_before["app"]["save"]  # unchanged translation stays
    after = snapshot(project)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {"locales/de.json", "locales/pl.json", "locales/ja.json", "tolk.lock"}


def test_a_removed_source_key_leaves_the_targets_without_sending_anything(
    stack: Stack, org: tuple[str, httpx.Client], project: Path
) -> None:
    key, http = org
    assert tolk(project, key, stack.api_url, "push", "--watch").returncode == 0
    jobs = group_count(http)
    props = project / "src" / "messages_en.properties"
    props.write_text("# Login form\nlogin.title=Sign in\n", encoding="utf-8")

    result = tolk(project, key, stack.api_url, "push", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sentStrings"] == 0
    assert group_count(http) == jobs
    for locale in TARGETS:
        text = (project / f"src/messages_{locale}.properties").read_text(encoding="utf-8")
        assert "login.title=" in text and "login.hint" not in text


def _lagging_engine(http: httpx.Client) -> str:
    created = http.post(
        "/engines",
        json={
            "name": "Lagging",
            "models": [
                {
                    "sourceLocale": "*",
                    "targetLocale": "*",
                    "provider": "openai",
                    "model": "lagging:client",
                }
            ],
        },
    )
    assert created.status_code == 201, created.text
    engine_id: str = created.json()["id"]
    return engine_id


def test_sigkill_mid_run_then_a_rerun_attaches_and_pull_finishes(
    stack: Stack, org: tuple[str, httpx.Client], project: Path
) -> None:
    key, http = org
    config = project / "tolk.yaml"
    config.write_text(config.read_text() + f"engine: {_lagging_engine(http)}\n", encoding="utf-8")
    env = {**os.environ, "TOLK_API_URL": stack.api_url, "TOLK_API_KEY": key, "CI": "true"}
    push = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "push", "--watch"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = project / ".tolk" / "runs"
    while not (runs.is_dir() and any(runs.glob("*.json"))):
        assert push.poll() is None, "push ended before it recorded its run"
        time.sleep(0.02)
    push.send_signal(signal.SIGKILL)
    push.wait()
    missing = [
        p
        for p in ("locales/de.json", "po/pl.po", "res/values-ja/strings.xml")
        if not (project / p).exists()
    ]
    assert missing, "every target was written before the kill: the run was not in flight"
    (run_file,) = runs.glob("*.json")
    run = json.loads(run_file.read_text())
    group_ids = {g["group_id"] for g in run["groups"]}

    # The re-run attaches to what the killed push created and sends only the rest: one
    # group per bucket file in all, none twice.
    rerun = tolk(project, key, stack.api_url, "push", "--json")
    assert rerun.returncode == 0, rerun.stderr
    answer = json.loads(rerun.stdout)
    assert run["id"] in answer["runs"]
    sources = [g["source"] for g in answer["groups"]]
    assert group_ids <= {g["groupId"] for g in answer["groups"]}
    assert len(sources) == len(set(sources)) == len(TARGET_FILES)
    again = json.loads(tolk(project, key, stack.api_url, "push", "--json").stdout)
    assert again["sentStrings"] == 0
    assert sorted(again["groups"], key=str) == sorted(answer["groups"], key=str)

    for group in answer["groups"]:
        assert wait_for_group(http, group["groupId"], timeout=120)["status"] == "completed"
    pulled = tolk(project, key, stack.api_url, "pull", "--json")
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    assert json.loads(pulled.stdout)["done"] is True
    check_targets(project)
    after = tolk(project, key, stack.api_url, "push", "--json")
    assert json.loads(after.stdout)["sentStrings"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "source: en\ntargets: [de]\nbuckets:\n  - format: docx\n    path: a/[locale].docx\n",
            "unknown format 'docx'",
        ),
        ("source: en\ntargets: [de\n", "not valid YAML"),
        (
            "source: en\ntargets: [de_DE]\nbuckets:\n  - format: json\n    path: l/[locale].json\n",
            "not a valid BCP-47 tag",
        ),
        (
            "source: en\ntargets: [de]\nbuckets:\n  - format: json\n    path: l/en.json\n",
            "needs [locale]",
        ),
        (
            "source: en\ntargets: [de]\nbuckets:\n  - format: json\n    path: ../[locale].json\n",
            "inside the project",
        ),
        (
            "source: en\ntargets: [de]\nbuckets:\n  - format: json\n    path: l/[locale].json\n"
            "colour: blue\n",
            "colour",
        ),
    ],
)
def test_bad_configuration_exits_2_with_one_line(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "tolk.yaml").write_text(config, encoding="utf-8")
    result = tolk(tmp_path, "tolk_unused", "http://127.0.0.1:9", "push")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_missing_key_or_source_file_exits_2(tmp_path: Path) -> None:
    shutil.copytree(PROJECT, tmp_path / "app")
    no_key = tolk(tmp_path / "app", "", "http://127.0.0.1:9", "push")
    assert no_key.returncode == 2 and "TOLK_API_KEY" in no_key.stderr
    (tmp_path / "app" / "strings.csv").unlink()
    gone = tolk(tmp_path / "app", "tolk_unused", "http://127.0.0.1:9", "status")
    assert gone.returncode == 2 and "strings.csv" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_watch_reattaches_after_the_connection_drops(
    stack: Stack, org: tuple[str, httpx.Client], project: Path
) -> None:
    key, http = org
    config = project / "tolk.yaml"
    config.write_text(config.read_text() + f"engine: {_lagging_engine(http)}\n", encoding="utf-8")
    pushed = tolk(project, key, stack.api_url, "push", "--json")
    assert pushed.returncode == 0, pushed.stderr
    run_id = json.loads(pushed.stdout)["run"]
    api_port = int(stack.api_url.rsplit(":", 1)[1])
    with FaultProxy(api_port) as proxy:
        env = {
            **os.environ,
            "TOLK_API_URL": f"http://127.0.0.1:{proxy.port}",
            "TOLK_API_KEY": key,
            "CI": "true",
        }
        watch = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "watch", run_id, "--transport", "ws"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert watch.stdout is not None
            first = watch.stdout.readline()  # "36 jobs, 0 finished": the run is open
            assert "jobs" in first
            assert not (project / "xliff2/ja.xlf").exists(), "the run ended before the drop"
            proxy.refuse()
            time.sleep(1.5)
            proxy.heal()
            rest, errors = watch.communicate(timeout=300)
        finally:  # a failed assertion must not leave the client running
            if watch.poll() is None:
                watch.kill()
                watch.wait()
    assert watch.returncode == 0, errors + rest
    assert "connection lost, connecting again" in rest
    check_targets(project)


def test_source_comments_and_contexts_reach_the_model_as_hints(
    stack: Stack, org: tuple[str, httpx.Client], project: Path, fake_llm: FakeLLM
) -> None:
    key, http = org
    created = http.post(
        "/engines",
        json={
            "name": "Hinted",
            "models": [
                {
                    "sourceLocale": "*",
                    "targetLocale": "*",
                    "provider": "openai",
                    "model": "good:client-hints",
                }
            ],
        },
    )
    config = project / "tolk.yaml"
    config.write_text(
        config.read_text().replace("targets: [de, pl, ja]", "targets: [de]")
        + f"engine: {created.json()['id']}\n",
        encoding="utf-8",
    )
    result = tolk(project, key, stack.api_url, "push", "--watch")
    assert result.returncode == 0, result.stderr + result.stdout
    hints = {
        item["text"]: item.get("hints", [])
        for call in fake_llm.calls(model="good:client-hints")
        for item in call.items
    }
    by_hint = {hint: text for text, given in hints.items() for hint in given}
    assert "Save" in by_hint["Button that stores the form"]  # PO extracted comment
    assert "Open" in by_hint["context: menu"]  # PO msgctxt
    assert "Hello World!" in by_hint["The conventional newborn programmer greeting"]  # ARB
    assert "Welcome to the app" in by_hint["Title of the main screen"]  # Android comment
    assert "Checkout" in by_hint["Page heading"]  # XLIFF note
    assert "Sign in" in by_hint["Login form"]  # .properties comment


def test_init_finds_the_usual_layouts_and_writes_a_config_that_loads(tmp_path: Path) -> None:
    root = tmp_path / "app"
    shutil.copytree(PROJECT, root)
    (root / "tolk.yaml").unlink()
    (root / ".gitignore").write_text("node_modules/", encoding="utf-8")
    made = tolk(root, "tolk_unused", "http://127.0.0.1:9", "init", "--targets", "de,pl")
    assert made.returncode == 0, made.stderr
    assert (root / ".gitignore").read_text() == "node_modules/\n.tolk/\n"  # runs stay local
    config = yaml.safe_load((root / "tolk.yaml").read_text(encoding="utf-8"))
    assert config["source"] == "en" and config["targets"] == ["de", "pl"]
    found = {(b["format"], b["path"], b.get("sourcePath")) for b in config["buckets"]}
    assert found >= {
        ("json", "locales/[locale].json", None),
        ("yaml", "config/locales/[locale].yml", None),
        ("po", "po/[locale].po", "po/messages.pot"),
        ("android", "res/values-[locale]/strings.xml", "res/values/strings.xml"),
        ("ios-strings", "[locale].lproj/Localizable.strings", None),
        ("arb", "lib/l10n/app_[locale].arb", None),
        ("xliff", "xliff/[locale].xlf", None),
        ("xcstrings", "Localizable.xcstrings", None),
    }
    status = tolk(root, "tolk_unused", "http://127.0.0.1:9", "status", "--json")
    assert status.returncode == 1  # nothing translated yet: everything is stale
    assert json.loads(status.stdout)["stale"]["locales/en.json"]["pl"]

    again = tolk(root, "tolk_unused", "http://127.0.0.1:9", "init", "--targets", "de")
    assert again.returncode == 2 and "exists already" in again.stderr


def test_push_watch_over_server_sent_events(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    en = (PROJECT / "locales" / "en.json").read_text(encoding="utf-8")
    root = small_project(tmp_path / "app", {"en.json": en})
    result = tolk(root, key, stack.api_url, "push", "--watch", "--transport", "sse", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["done"] is True
    assert {(j["locale"], j["status"], j["written"]) for j in answer["jobs"]} == {
        ("de", "completed", True),
        ("fr", "completed", True),
    }
    assert json.loads((root / "locales" / "fr.json").read_text())["app"]["save"] != "Save"


def test_push_watch_draws_bars_at_a_terminal(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, _ = org
    en = (PROJECT / "locales" / "en.json").read_text(encoding="utf-8")
    root = small_project(tmp_path / "app", {"en.json": en})
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(TOLK_API_URL=stack.api_url, TOLK_API_KEY=key, COLUMNS="120")
    code, drawn = run_on_a_terminal(env, "push", "--watch", "-C", str(root))
    assert code == 0, drawn
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)  # colours and cursor moves
    assert "━" in screen  # rich's bars, not plain lines
    for row in ("all", "de", "fr"):
        assert re.search(rf"{row}\s+━+\s+\d/\d", screen), (row, screen)
    assert "2/2" in screen and "[1/2]" not in screen


def test_every_format_writes_a_readable_target_with_nothing_translated_yet() -> None:
    """A target with no translation (every key removed, or none landed yet) is still a file
    its own reader accepts."""
    from client.config import load_config
    from client.formats import Catalog

    config = load_config(PROJECT)
    for bucket_file in config.files():
        fmt = bucket_file.bucket.format
        source = (PROJECT / bucket_file.source).read_text(encoding="utf-8")
        for locale in TARGETS:
            text = fmt.write(
                Catalog(locale),
                locale=locale,
                source_locale="en",
                source_text=source,
                existing=None,
            )
            read = fmt.read(text, locale)
            assert not [e for e in read.entries if e.translatable], (bucket_file.source, text)


def test_jobs_commands_wrap_the_api(
    stack: Stack, org: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    key, http = org
    created = http.post(
        "/jobs/localization",
        json={"sourceLocale": "en", "targetLocales": ["de", "fr"], "data": {"t": "Hello"}},
    ).json()
    wait_for_group(http, created["groupId"])
    listed = tolk(
        tmp_path, key, stack.api_url, "jobs", "list", "--group", created["groupId"], "--json"
    )
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert {j["targetLocale"] for j in items} == {"de", "fr"}
    plain = tolk(tmp_path, key, stack.api_url, "jobs", "list", "--group", created["groupId"])
    assert sorted(line.split()[2] for line in plain.stdout.splitlines()) == ["de", "fr"]

    job_id = items[0]["id"]
    got = json.loads(tolk(tmp_path, key, stack.api_url, "jobs", "get", job_id, "--json").stdout)
    assert got["id"] == job_id and got["outputData"]["t"] != "Hello"

    cancel = tolk(tmp_path, key, stack.api_url, "jobs", "cancel", created["groupId"])
    assert cancel.returncode == 1 and "409 ConflictError" in cancel.stderr
    retry = tolk(tmp_path, key, stack.api_url, "jobs", "retry", created["groupId"])
    assert retry.returncode == 1 and "409 ConflictError" in retry.stderr
    other = tolk(tmp_path, key, stack.api_url, "jobs", "get", "ljb_0000000000000000")
    assert other.returncode == 1 and "404 NotFoundError" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
