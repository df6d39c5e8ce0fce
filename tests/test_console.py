"""The review console in a real browser: Debian's headless Chromium driven by Playwright,
on the real stack. Sign in by keyboard, watch a group's bar move to done over SSE, open a
group and a job, retry from a button, review jobs from the queue (an edit whose chips
cannot be deleted, an approve, a reject), sign out and see the old cookie refused, and
check that the API key reaches no cookie, no storage and no page.

The browser is the system's ``chromium`` (``.ci/run`` installs it); Playwright never
downloads one. With ``TOLK_CONSOLE_SCREENSHOTS=<dir>`` the pages are saved there as PNG
(``docs/console/`` holds the ones the docs show)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from stack import Stack
from tests.conftest import broken_engine, new_org_key, wait_for_group
from tests.test_human_review import wait_for_status

pytestmark = pytest.mark.stack
T = TypeVar("T")

WAIT_MS = 120_000  # how long a page may take to show what the stack does (not a bound)
TITLE = "Welcome, {name}!"
DOCUMENT = {
    "title": TITLE,
    "steps": [{"body": "Open <b>Settings</b> to begin."}, {"body": "You have {count} files."}],
}


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium package is needed (apt-get install chromium)"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 800})
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def console_org(stack: Stack) -> tuple[str, str]:
    return new_org_key(stack, "Console Co")


def screenshot(page: Page, name: str) -> None:
    target = os.environ.get("TOLK_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def sign_in(page: Page, stack: Stack, key: str) -> None:
    """Sign in as a keyboard user: the key field has the focus, Enter submits."""
    page.goto(f"{stack.api_url}/console")
    expect(page).to_have_url(f"{stack.api_url}/console/login?next=%2Fconsole")
    expect(page.locator("#api_key")).to_be_focused()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{stack.api_url}/console")
    expect(page.locator("h1")).to_have_text("Groups")


def assert_key_nowhere(page: Page, context: BrowserContext, key: str) -> None:
    """Not in any cookie, in local or session storage, or in the page's HTML."""
    cookies = context.cookies()
    assert cookies, "signed in, the browser holds the session cookie"
    assert all(key not in json.dumps(cookie) for cookie in cookies), cookies
    session = next(cookie for cookie in cookies if cookie["name"] == "tolk_console")
    assert session["httpOnly"] and session["sameSite"] == "Strict", session
    storage = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert key not in storage
    assert key not in page.content()
    assert key[:16] not in page.content()  # not even its visible part


def http_for(stack: Stack, context: BrowserContext) -> httpx.Client:
    """An HTTP client holding the browser's cookies (to send what a browser would not)."""
    jar = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
    return httpx.Client(base_url=stack.api_url, cookies=jar, follow_redirects=False, timeout=30)


def wait_until(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 120) -> T:
    """What ``read`` gives once ``done`` says so (a wait for the stack, not a bound)."""
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        assert time.monotonic() < deadline, f"still {value} after {timeout}s"
        time.sleep(0.2)
    return value


def create_group(http: httpx.Client, locales: list[str], **extra: Any) -> str:
    body = {"sourceLocale": "en", "targetLocales": locales, "data": DOCUMENT, **extra}
    created = http.post("/jobs/localization", json=body)
    assert created.status_code == 202, created.text
    group_id: str = created.json()["groupId"]
    return group_id


def test_sign_in_watch_a_bar_move_open_a_group_and_a_job(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    _, key = console_org
    api = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    page = context.new_page()
    sign_in(page, stack, key)
    assert_key_nowhere(page, context, key)

    # No worker: the group waits, and the page opens on a bar at zero.
    stack.kill("worker", signal.SIGTERM)
    try:
        group_id = create_group(api, ["de", "fr", "ja"])
        page.goto(f"{stack.api_url}/console")
        bar = page.locator(f'.bar[data-group="{group_id}"]')
        expect(bar.locator('[data-field="done"]')).to_have_text("0")
        expect(bar.locator('[data-field="total"]')).to_have_text("3")
        assert bar.get_attribute("data-stream-token"), "a live bar carries its read token"
    finally:
        stack.start_worker()
    # The worker is back: the bar moves to done over the stream, without a reload.
    expect(bar).to_have_attribute("data-finished", "true")
    expect(bar.locator('[data-field="done"]')).to_have_text("3")
    expect(bar.locator('[data-field="status"]')).to_have_text("completed")
    assert bar.locator("progress").evaluate("p => p.value === p.max && p.max === 3")
    assert_key_nowhere(page, context, key)
    screenshot(page, "groups")

    # Filters: a completed group is listed under Completed, not under In progress.
    page.goto(f"{stack.api_url}/console?status=active")
    expect(page.locator(f'.bar[data-group="{group_id}"]')).to_have_count(0)
    page.get_by_role("link", name="Completed").click()
    expect(page.locator(f'.bar[data-group="{group_id}"]')).to_have_count(1)

    # The group: each locale's status and a link to its job.
    page.get_by_role("link", name=group_id).click()
    expect(page.locator("h1")).to_contain_text(group_id)
    rows = page.locator("table.locales tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("th")).to_have_text("de")
    expect(rows.nth(0).locator(".status")).to_have_text("completed")
    assert page.get_by_role("button", name="Retry failed and cancelled jobs").count() == 0
    assert_key_nowhere(page, context, key)
    screenshot(page, "group")

    # The job: source and translation side by side per key, and its steps with models.
    rows.nth(0).get_by_role("link").click()
    job = api.get(f"/jobs/localization/{page.url.rsplit('/', 1)[1]}").json()
    strings = page.locator("table.strings tbody tr")
    expect(strings).to_have_count(3)
    expect(strings.nth(0).locator("th")).to_have_text("title")
    expect(strings.nth(0).locator("td").nth(0)).to_have_text(TITLE)
    expect(strings.nth(0).locator("td").nth(1)).to_have_text(job["outputData"]["title"])
    assert job["outputData"]["title"] != TITLE
    expect(page.locator("table.steps tbody tr th")).to_have_text(["translate"])
    expect(page.locator("table.steps tbody tr td").nth(1)).to_contain_text(job["steps"][0]["model"])
    assert_key_nowhere(page, context, key)
    screenshot(page, "job")

    # On a narrow screen nothing runs off the side: the tables become cards.
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_a_job_with_a_warning_and_a_retry_from_the_group_page(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    org_id, key = console_org
    api = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    engine = broken_engine(stack, org_id, "Console broken")
    group_id = create_group(api, ["de", "ja"], engineId=engine)
    finished = wait_for_group(api, group_id, timeout=120)
    assert finished["status"] == "partial", finished
    ja = next(job for job in finished["jobs"] if job["targetLocale"] == "ja")
    before = api.get(f"/jobs/localization/{ja['id']}").json()
    page = context.new_page()
    sign_in(page, stack, key)
    page.goto(f"{stack.api_url}/console/groups/{group_id}")
    failed = page.locator("table.locales tbody tr").nth(1)
    expect(failed.locator(".status")).to_have_text("failed")
    expect(failed.locator(".error-text")).not_to_be_empty()
    retry = page.get_by_role("button", name="Retry failed and cancelled jobs")
    retry.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_have_text(
        "Retry requested: failed and cancelled jobs run again."
    )
    # The retry ran the failed job once more: it failed again, at a later time.
    again = wait_until(lambda: api.get(f"/jobs/localization/{ja['id']}").json(),
                       lambda job: job["status"] == "failed"
                       and job["completedAt"] != before["completedAt"])  # fmt: skip
    assert again["error"]
    assert wait_for_group(api, group_id, timeout=120)["status"] == "partial"


def test_no_change_without_the_csrf_token_and_sign_out_ends_the_session(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    _, key = console_org
    api = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    group_id = create_group(api, ["de"])
    wait_for_group(api, group_id, timeout=120)
    page = context.new_page()
    sign_in(page, stack, key)
    token = page.locator('form.signout input[name="csrf_token"]').input_value()
    retry_url = f"/console/groups/{group_id}/retry"
    with http_for(stack, context) as http:
        missing = http.post(retry_url)
        wrong = http.post(retry_url, data={"csrf_token": token[:-2] + "xx"})
        other = http.post(retry_url, headers={"X-CSRF-Token": "x" * len(token)})
        for refused in (missing, wrong, other):
            assert refused.status_code == 403, refused.text
            assert refused.json()["_tag"] == "ForbiddenError"
        assert "CSRF" in missing.json()["message"]
        # The right token in the header is accepted (here: nothing to retry, said on the page).
        accepted = http.post(retry_url, headers={"X-CSRF-Token": token})
        assert accepted.status_code == 303
        assert accepted.headers["location"].endswith("notice=retry_refused")
        # A sign-out without the token ends nothing.
        assert http.post("/console/logout").status_code == 403
        assert http.get("/console").status_code == 200
    assert api.get(f"/jobs/localization/groups/{group_id}").json()["status"] == "completed"

    old_cookies = context.cookies()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{stack.api_url}/console/login")
    assert not [c for c in context.cookies() if c["name"] == "tolk_console"]
    # The old cookie, put back, opens nothing: the session is gone on the server.
    context.add_cookies(old_cookies)  # type: ignore[arg-type]
    page.goto(f"{stack.api_url}/console/groups/{group_id}")
    expect(page).to_have_url(f"{stack.api_url}/console/login?next=%2Fconsole%2Fgroups%2F{group_id}")
    with http_for(stack, context) as http:
        assert http.get("/console").status_code == 303
        gone = http.post(retry_url, headers={"X-CSRF-Token": token})
        assert gone.status_code == 401 and gone.json()["_tag"] == "UnauthorizedError"


def test_a_wrong_key_signs_nobody_in(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    page = context.new_page()
    page.goto(f"{stack.api_url}/console/login")
    page.locator("#api_key").fill("tolk_nobody_" + "x" * 30)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".error")).to_have_text("Unknown API key.")
    assert not [c for c in context.cookies() if c["name"] == "tolk_console"]
    # A sign-in posted without the form's token (another site's form) is refused.
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        forged = http.post("/console/login", data={"api_key": console_org[1], "csrf_token": "x"})
    assert forged.status_code == 403 and "set-cookie" not in forged.headers


REVIEWED = {"humanReview": {"enabled": True}}


SWAP_CHIP = """editor => {
  const range = document.createRange();
  range.selectNode(editor.querySelector(".chip"));
  getSelection().removeAllRanges();
  getSelection().addRange(range);
  editor.focus();
  document.execCommand("insertHTML", false,
    '<span class="chip" contenteditable="false" data-token="{count}">{count}</span>');
}"""


def editor_of(page: Page, job_id: str, key: str) -> Any:
    section = page.locator(f"#review-{job_id}")
    return section.locator(f'tr[data-key="{key}"] .editor')


def test_review_queue_edit_keeping_the_chips_approve_and_reject(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    _, key = console_org
    api = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    group_id = create_group(api, ["de", "fr"], pipelineConfig=REVIEWED)
    ids = {j["targetLocale"]: j["id"] for j in api.get(f"/jobs/localization/groups/{group_id}")
           .json()["jobs"]}  # fmt: skip
    de, fr = ids["de"], ids["fr"]
    drafts = {job_id: wait_for_status(api, job_id, "awaiting_review")["draftData"]
              for job_id in (de, fr)}  # fmt: skip
    page = context.new_page()
    sign_in(page, stack, key)
    expect(page.locator(f'.bar[data-group="{group_id}"] [data-field="awaiting"]')).to_have_text("2")
    # The groups filter "Awaiting review" lists the group; the job page shows the draft.
    page.get_by_role("link", name="Awaiting review").click()
    expect(page.locator(f'.bar[data-group="{group_id}"]')).to_have_count(1)
    page.goto(f"{stack.api_url}/console/jobs/{de}")
    expect(page.locator("table.strings tbody tr").nth(0).locator("td").nth(1)).to_have_text(
        drafts[de]["title"]
    )

    # The queue, from the navigation, filtered to the group by keyboard: oldest first.
    page.get_by_role("link", name="Reviews").click()
    expect(page.locator("h1")).to_have_text("Reviews")
    page.locator("#f-group").fill(group_id)
    page.keyboard.press("Enter")
    sections = page.locator("section.review")
    queued = api.get("/reviews", params={"groupId": group_id}).json()["items"]
    expect(sections).to_have_count(2)
    assert [s.get_attribute("id") for s in sections.all()] == [
        f"review-{item['id']}" for item in queued
    ]
    page.locator("#f-locale").fill("fr")
    page.keyboard.press("Enter")
    expect(sections).to_have_count(1)
    expect(sections.nth(0)).to_have_id(f"review-{fr}")
    page.goto(f"{stack.api_url}/console/reviews?groupId={group_id}")
    expect(sections).to_have_count(2)
    row = page.locator(f'#review-{de} tr[data-key="title"]')
    expect(row.locator("td").nth(0)).to_have_text(TITLE)
    expect(row.locator(".chip")).to_have_text(["{name}"])
    expect(page.locator(f'#review-{de} tr[data-key="steps.0.body"] .chip')).to_have_text(
        ["<b>", "</b>"]
    )
    assert_key_nowhere(page, context, key)
    screenshot(page, "reviews")

    # Edit the title by keyboard: Backspace from the end deletes the text after the chip,
    # then stops at the chip, which stays; the text typed goes in after it.
    title = drafts[de]["title"]
    head, _, tail = title.partition("{name}")
    editor = editor_of(page, de, "title")
    editor.focus()
    page.keyboard.press("End")
    for _ in range(len(tail) + 3):
        page.keyboard.press("Backspace")
    page.keyboard.type(" ok")
    expect(editor.locator(".chip")).to_have_text(["{name}"])
    edited_title = head + "{name} ok"
    expect(editor).to_have_text(edited_title)
    # Neither Delete before it, nor a selection over it, nor Ctrl+Backspace removes it.
    page.keyboard.press("Home")
    for _ in range(len(head)):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Delete")
    page.keyboard.press("End")
    page.keyboard.press("Control+Backspace")
    page.keyboard.press("Control+Backspace")
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.type("x")
    expect(editor.locator(".chip")).to_have_text(["{name}"])
    assert "{name}" in page.locator(f"#t-{de}-0").input_value()
    # A change no beforeinput announces (an extension's or an input method's; here an
    # execCommand) that puts another chip where this one was is undone too.
    editor.evaluate(SWAP_CHIP)
    expect(editor.locator(".chip")).to_have_text(["{name}"])
    assert "{name}" in page.locator(f"#t-{de}-0").input_value()
    assert "{count}" not in page.locator(f"#t-{de}-0").input_value()
    # Back to the edit (the keys above only ever removed plain text), then approve.
    page.goto(f"{stack.api_url}/console/reviews?groupId={group_id}")
    editor = editor_of(page, de, "title")
    editor.focus()
    page.keyboard.press("End")
    for _ in range(len(tail) + 3):
        page.keyboard.press("Backspace")
    page.keyboard.type(" ok")
    page.locator(f"#review-{de}").get_by_role("button", name="Approve").click()
    expect(page.locator(".notice")).to_have_text("Approved: the job goes on.")
    done = wait_for_status(api, de, "completed")
    assert done["outputData"] == {**drafts[de], "title": edited_title}

    # Reject with a comment: the job comes back for a second round.
    section = page.locator(f"#review-{fr}")
    section.get_by_label("Comment (needed to reject)").fill("Use the polite form")
    section.get_by_role("button", name="Reject").click()
    expect(page.locator(".notice")).to_have_text(
        "Rejected: the job is translated again with the comment."
    )
    wait_for_status(api, fr, "awaiting_review", rounds=2)
    page.reload()
    expect(page.locator(f"#review-{fr} h2 .status")).to_have_text("review round 2")
    expect(page.locator(f"#review-{de}")).to_have_count(0)

    # Refused reviews change nothing and say why beside the job: a reject without a
    # comment, an edit that drops a placeholder (sent as a browser without the script
    # would), a job no longer waiting.
    section.get_by_role("button", name="Reject").click()
    expect(page.locator(f"#error-{fr}")).to_contain_text("a reject needs a comment")
    token = page.locator('form.signout input[name="csrf_token"]').input_value()
    with http_for(stack, context) as http:
        dropping = {"csrf_token": token, "action": "approve", "t.0": "Hallo!"}
        dropped = http.post(f"/console/reviews/{fr}", data=dropping)
        assert dropped.status_code == 400
        assert f'id="error-{fr}"' in dropped.text and "{name}" in dropped.text
        unsigned = http.post(f"/console/reviews/{fr}", data={"action": "approve"})
        assert unsigned.status_code == 403 and unsigned.json()["_tag"] == "ForbiddenError"
    assert wait_for_status(api, fr, "awaiting_review", rounds=2)["status"] == "awaiting_review"
    assert (
        api.post(f"/jobs/localization/{fr}/review", json={"action": "approve"}).status_code == 202
    )
    page.locator(f"#review-{fr}").get_by_role("button", name="Approve").click()
    expect(page.locator(f"#error-{fr}")).to_have_text("the job is not awaiting review")
    wait_for_status(api, fr, "completed")
    assert_key_nowhere(page, context, key)

    # On a narrow screen the queue's tables become cards too.
    page.goto(f"{stack.api_url}/console/reviews")
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


# Strings a textarea does not carry as they are: line breaks (a form sends CRLF), a
# leading line break (the HTML parser drops one after <textarea>), and two keys whose
# paths print alike ("a.b", and "b" inside "a").
AWKWARD = {
    "intro": "Line one\nLine two",
    "blank": "\n\nAfter two line breaks",
    "a.b": "A dotted key",
    "a": {"b": "A nested key"},
}


def test_an_approve_without_an_edit_keeps_the_draft_exactly_and_an_edit_keeps_its_lines(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    _, key = console_org
    api = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    body = {"sourceLocale": "en", "targetLocales": ["de", "fr"], "data": AWKWARD,
            "pipelineConfig": REVIEWED}  # fmt: skip
    created = api.post("/jobs/localization", json=body)
    assert created.status_code == 202, created.text
    ids = {job["targetLocale"]: job["id"] for job in created.json()["jobs"]}
    de, fr = ids["de"], ids["fr"]
    drafts = {job_id: wait_for_status(api, job_id, "awaiting_review")["draftData"]
              for job_id in (de, fr)}  # fmt: skip
    page = context.new_page()
    sign_in(page, stack, key)
    page.goto(f"{stack.api_url}/console/reviews?groupId={created.json()['groupId']}")
    # Each row holds its own key's draft, as it is.
    for job_id in (de, fr):
        shown = page.locator(f"#review-{job_id} textarea.edit").evaluate_all(
            "areas => areas.map(a => a.value)"
        )
        draft = drafts[job_id]
        assert shown == [draft["intro"], draft["blank"], draft["a.b"], draft["a"]["b"]]

    # Approved untouched: the output is the draft, byte for byte.
    page.locator(f"#review-{de}").get_by_role("button", name="Approve").click()
    expect(page.locator(".notice")).to_have_text("Approved: the job goes on.")
    assert wait_for_status(api, de, "completed")["outputData"] == drafts[de]
    # The job page too shows each key's own translation.
    page.goto(f"{stack.api_url}/console/jobs/{de}")
    cells = page.locator("table.strings tbody tr td:nth-child(3)")
    expect(cells).to_have_count(4)
    assert cells.evaluate_all("cells => cells.map(c => c.textContent.trim())") == [
        drafts[de]["intro"],
        drafts[de]["blank"].strip(),
        drafts[de]["a.b"],
        drafts[de]["a"]["b"],
    ]
    page.goto(f"{stack.api_url}/console/reviews?groupId={created.json()['groupId']}")

    # Edited: the edit goes in with the draft's line breaks, every other string as it was.
    editor = editor_of(page, fr, "intro")
    editor.focus()
    page.keyboard.press("Control+End")
    page.keyboard.type(" ok")
    page.locator(f"#review-{fr}").get_by_role("button", name="Approve").click()
    expect(page.locator(".notice")).to_have_text("Approved: the job goes on.")
    edited = {**drafts[fr], "intro": drafts[fr]["intro"] + " ok"}
    assert wait_for_status(api, fr, "completed")["outputData"] == edited


def test_bad_input_in_the_browser_is_said_on_a_page(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    """What a browser user can get wrong is said on a page of the console, never as the
    API's JSON: a sign-in with what cannot be a key, a queue filter that is no id, a link
    to a filter or a job that does not exist, a button on a page signed out elsewhere."""
    _, key = console_org
    page = context.new_page()
    page.goto(f"{stack.api_url}/console/login")
    page.locator("#api_key").fill("x" * 300)
    page.keyboard.press("Enter")
    expect(page.locator(".error")).to_contain_text("at most 200 characters")
    expect(page.locator("#api_key")).to_be_editable()
    sign_in(page, stack, key)

    page.goto(f"{stack.api_url}/console/reviews")
    page.locator("#f-group").fill("not a group")
    page.keyboard.press("Enter")
    expect(page.locator("#filter-error")).to_contain_text("groupId")
    expect(page.locator("#f-group")).to_have_value("not a group")
    # An id pasted with spaces around it is that id.
    page.locator("#f-group").fill("  ljg_nothing00000000  ")
    page.keyboard.press("Enter")
    expect(page.locator(".empty")).to_have_text("No job is waiting for review with these filters.")
    expect(page.locator("#f-group")).to_have_value("ljg_nothing00000000")

    for path, status, said in (
        ("/console?status=bogus", 400, "status"),
        ("/console/jobs/ljb_nothing00000000", 404, "not found"),
        ("/console/groups/ljg_nothing00000000", 404, "not found"),
    ):
        shown = page.goto(f"{stack.api_url}{path}")
        assert shown is not None and shown.status == status, path
        expect(page.locator("main .error")).to_contain_text(said)
        expect(page.get_by_role("link", name="Back to the groups")).to_be_visible()

    # Signed out in another tab, the old page's button says so and offers to sign in.
    page.goto(f"{stack.api_url}/console")
    other = context.new_page()
    other.goto(f"{stack.api_url}/console")
    other.get_by_role("button", name="Sign out").click()
    expect(other).to_have_url(f"{stack.api_url}/console/login")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("main .error")).to_contain_text("session has ended")
    page.get_by_role("link", name="Sign in again").click()
    expect(page.locator("#api_key")).to_be_focused()


# Every control a keyboard can reach, visible on the page.
TABBABLE = """() => Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), textarea, [tabindex="0"]'))
  .filter(e => e.tabIndex >= 0 && !e.hidden && e.getClientRects().length)"""


def check_keyboard_and_width(page: Page) -> None:
    """No horizontal scroll; Tab reaches every control in turn, each with a visible focus
    outline; every control is a native one (a button is a <button>)."""
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator("[onclick], [role=button], a:not([href])").count() == 0
    expected = page.evaluate(f"() => ({TABBABLE})().map((e, i) => (e.dataset.tab = i, i))")
    # Start from the top of the page, as after a click on its background.
    page.evaluate("() => { document.body.tabIndex = -1; document.body.focus(); }")
    reached = []
    for _ in expected:
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
                return [Number(e.dataset.tab), s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        )
    assert [tab for tab, _, _ in reached] == expected, page.url
    assert all(style != "none" and width >= 2 for _, style, width in reached), reached


def test_every_page_is_local_keyboard_usable_and_fits_a_narrow_screen(
    stack: Stack, context: BrowserContext, console_org: tuple[str, str]
) -> None:
    _, key = console_org
    api = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    group_id = create_group(api, ["de"], pipelineConfig=REVIEWED)
    job_id = api.get(f"/jobs/localization/groups/{group_id}").json()["jobs"][0]["id"]
    wait_for_status(api, job_id, "awaiting_review")
    page = context.new_page()
    seen: list[str] = []  # every URL asked for, and every response's headers
    page.on("request", lambda request: seen.append(request.url))
    page.on("response", lambda response: seen.append(json.dumps(response.headers)))
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{stack.api_url}/console/login")
    check_keyboard_and_width(page)
    sign_in(page, stack, key)
    for path in ("/console", f"/console/groups/{group_id}", f"/console/jobs/{job_id}",
                 f"/console/reviews?groupId={group_id}"):  # fmt: skip
        page.goto(f"{stack.api_url}{path}")
        check_keyboard_and_width(page)
    expect(page.locator(f"#review-{job_id} .editor").first).to_be_visible()

    # Everything came from this server: no CDN, no font; the stylesheet loads nothing more.
    urls = [entry for entry in seen if entry.startswith("http")]
    assert urls and all(url.startswith(f"{stack.api_url}/") for url in urls), urls
    css = page.request.get(f"{stack.api_url}/console/static/console.css").text()
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    # The key went into no URL, redirect or header, and into no log of the stack.
    assert all(key not in entry for entry in seen)
    logs = Path(stack.root) / "logs"  # type: ignore[attr-defined]
    assert all(key not in log.read_text(errors="replace") for log in logs.iterdir())


def test_older_groups_are_a_click_away_with_or_without_a_filter(
    stack: Stack, context: BrowserContext
) -> None:
    _, key = new_org_key(stack, "Console Pages Co")
    api = httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=30)
    size = stack.settings.console_page_size
    created = [create_group(api, ["de"]) for _ in range(size + 1)]  # newest last
    page = context.new_page()
    sign_in(page, stack, key)
    groups = page.locator("li.group .group-head a")
    expect(groups).to_have_count(size)
    assert groups.all_text_contents() == created[::-1][:size]
    page.get_by_role("link", name="Older groups").click()
    expect(groups).to_have_text([created[0]])
    # With a filter, the next page keeps it.
    for group_id in created:
        wait_for_group(api, group_id, timeout=120)
    page.goto(f"{stack.api_url}/console?status=completed")
    page.get_by_role("link", name="Older groups").click()
    expect(groups).to_have_text([created[0]])
    assert "status=completed" in page.url
