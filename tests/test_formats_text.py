"""The laws of the text formats (json, yaml, po, properties, csv, arb) on fixtures written in
each platform's usual style (tests/data/formats/text): an unchanged file round-trips byte for
byte, a written target reads back as its catalog and re-writes identically, carries its
locale's markers and exactly its plural forms, loses removed keys, keeps comments and
untranslatable entries, is accepted by the platform's own tooling, and malformed input is a
one-line FormatError."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polib
import pytest
import yaml as pyyaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from client.formats import get_format
from client.formats.model import Catalog, Entry, FileFormat, FormatError
from client.formats.properties import Style
from localization.plurals import gettext_plurals, plural_categories

DATA = Path(__file__).parent / "data" / "formats" / "text"
TARGETS = ("de", "pl", "ja")
DONE = {"de": "übersetzt", "pl": "przetłumaczone", "ja": "翻訳済み", "pt-BR": "traduzido"}

# (format, fixture); every law runs on each
CASES = [
    ("json", "en.json"),
    ("yaml", "en.yml"),
    ("po", "messages.pot"),
    ("properties", "messages.properties"),
    ("properties", "legacy.properties"),
    ("csv", "strings.csv"),
    ("arb", "app_en.arb"),
]
IDS = [f"{name}:{file}" for name, file in CASES]
# a key of each fixture whose text sits on one line, to change or remove
ONE_LINE_KEY = {
    "en.json": "app.title",
    "en.yml": "nav.home",
    "messages.pot": "Settings",
    "messages.properties": "app.title",
    "legacy.properties": "shop.cart",
    "strings.csv": "app.save",
    "app_en.arb": "signOut",
}


def fixture(file: str) -> str:
    return (DATA / file).read_bytes().decode("utf-8")


def translate(catalog: Catalog, locale: str) -> Catalog:
    """A translated catalog for ``locale``: each translatable text with a mark appended (format
    directives stay in place), plural entries with exactly the locale's categories."""
    out = Catalog(locale)
    for entry in catalog.entries:
        if not entry.translatable:
            continue
        if entry.plurals is not None:
            other = entry.plurals["other"]
            forms = {c: f"{other} [{c}] ({DONE[locale]})" for c in plural_categories(locale)}
            out.entries.append(Entry(entry.key, plurals=forms))
        else:
            out.entries.append(Entry(entry.key, value=f"{entry.value} ({DONE[locale]})"))
    return out


def texts(catalog: Catalog) -> dict[str, Any]:
    return {e.key: e.text() for e in catalog.entries if e.translatable}


def held(name: str, catalog: Catalog, locale: str) -> dict[str, Any]:
    """The texts a file of ``name`` can hold for the catalog: its format's plural forms of the
    locale (gettext keeps only the categories of its msgstr[n])."""
    kept = get_format(name).plural_forms(locale)
    out = texts(catalog)
    return {k: {c: v[c] for c in kept} if isinstance(v, dict) else v for k, v in out.items()}


def write(
    fmt: FileFormat, catalog: Catalog, source: str, existing: str | None = None, **kw: str
) -> str:
    return fmt.write(
        catalog,
        locale=kw.get("locale", catalog.locale),
        source_locale=kw.get("source_locale", "en"),
        source_text=source,
        existing=existing,
    )


def target(name: str, file: str, locale: str) -> tuple[FileFormat, Catalog, str]:
    fmt = get_format(name)
    catalog = translate(fmt.read(fixture(file), "en"), locale)
    return fmt, catalog, write(fmt, catalog, fixture(file))


def msgfmt(text: str, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.po"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        ["msgfmt", *flags, "-o", "/dev/null", str(path)], capture_output=True, text=True
    )


def java_properties(text: str) -> dict[str, str]:
    """``java.util.Properties.load`` transcribed as Java writes it, a character state machine
    (its LineReader, ``load0`` and ``loadConvert``), independent of the format's line-based
    reader. Raises ValueError where Java throws IllegalArgumentException."""
    props: dict[str, str] = {}
    for line in _java_lines(text):
        key_len, value_start, has_sep, backslash = 0, len(line), False, False
        while key_len < len(line):
            c = line[key_len]
            if c in "=:" and not backslash:
                value_start, has_sep = key_len + 1, True
                break
            if c in " \t\f" and not backslash:
                value_start = key_len + 1
                break
            backslash = not backslash if c == "\\" else False
            key_len += 1
        while value_start < len(line):
            c = line[value_start]
            if c not in " \t\f":
                if has_sep or c not in "=:":
                    break
                has_sep = True
            value_start += 1
        props[_java_convert(line[:key_len])] = _java_convert(line[value_start:])
    return props


def _java_lines(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while True:
        buf: list[str] = []
        skip_ws, appended, comment, backslash, skip_lf = True, False, False, False, False
        while True:
            if i >= n:
                if buf and not comment:
                    yield "".join(buf[:-1] if backslash else buf)
                return
            c = text[i]
            i += 1
            if skip_lf:
                skip_lf = False
                if c == "\n":
                    continue
            if skip_ws:
                if c in " \t\f" or (not appended and c in "\r\n"):
                    continue
                skip_ws = appended = False
            if not buf and c in "#!":
                comment = True
            if c not in "\r\n":
                buf.append(c)
                backslash = not backslash if c == "\\" else False
                continue
            if comment or not buf:
                buf, comment, skip_ws, backslash = [], False, True, False
                continue
            if i >= n:
                yield "".join(buf[:-1] if backslash else buf)
                return
            if not backslash:
                yield "".join(buf)
                break
            buf.pop()
            skip_ws = appended = True
            backslash = False
            skip_lf = c == "\r"


def _java_convert(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        c = s[i]
        i += 1
        if c == "u":
            digits = s[i : i + 4]
            if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("Malformed \\uxxxx encoding.")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append({"t": "\t", "r": "\r", "n": "\n", "f": "\f"}.get(c, c))
    joined = "".join(out)  # Java strings are UTF-16: pairs of \uXXXX are one character
    return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


# --- law 1: an unchanged file round-trips byte for byte ----------------------------------------


@pytest.mark.parametrize(("name", "file"), CASES, ids=IDS)
def test_unchanged_source_round_trips_byte_for_byte(name: str, file: str) -> None:
    fmt, src = get_format(name), fixture(file)
    catalog = fmt.read(src, "en")
    assert catalog.entries
    assert write(fmt, catalog, src, existing=src) == src


@pytest.mark.parametrize(("name", "file"), CASES, ids=IDS)
def test_changing_one_text_changes_only_its_line(name: str, file: str) -> None:
    """The writer reproduces the source's layout itself, not only by keeping an unchanged
    file: one new text changes exactly the line that holds it."""
    fmt, src = get_format(name), fixture(file)
    catalog = fmt.read(src, "en")
    key = ONE_LINE_KEY[file]
    catalog.by_key()[key].value = "Changed text"
    out = write(fmt, catalog, src, existing=src)
    before, after = src.splitlines(), out.splitlines()
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1
    assert "Changed text" in after[changed[0]]
    assert texts(fmt.read(out, "en"))[key] == "Changed text"


# --- laws 2 and 3: a target reads back as its catalog, and re-writes identically ----------------


@pytest.mark.parametrize("locale", TARGETS)
@pytest.mark.parametrize(("name", "file"), CASES, ids=IDS)
def test_target_reads_back_as_its_catalog(name: str, file: str, locale: str) -> None:
    fmt, catalog, out = target(name, file, locale)
    assert texts(fmt.read(out, locale)) == held(name, catalog, locale)


@pytest.mark.parametrize("locale", TARGETS)
@pytest.mark.parametrize(("name", "file"), CASES, ids=IDS)
def test_writing_a_target_again_is_byte_identical(name: str, file: str, locale: str) -> None:
    fmt, catalog, out = target(name, file, locale)
    src = fixture(file)
    assert write(fmt, catalog, src, existing=out) == out
    # what a pull does with unchanged strings: the target's own catalog, written over itself
    assert write(fmt, fmt.read(out, locale), src, existing=out) == out


# --- law 4: locale markers and exactly the target's plural forms -------------------------------


@pytest.mark.parametrize(
    ("locale", "suffixes"),
    [("de", ["one", "other"]), ("pl", ["one", "few", "many", "other"]), ("ja", ["other"])],
)
def test_json_target_has_the_i18next_suffixes_of_its_locale(
    locale: str, suffixes: list[str]
) -> None:
    _, _, out = target("json", "en.json", locale)
    inbox = json.loads(out, object_pairs_hook=list)[1][1]
    assert [k for k, _ in inbox] == [
        "heading",
        *(f"message_{s}" for s in suffixes),
        "placeholder",
    ]
    errors = dict(json.loads(out)["errors"])
    assert [k for k in errors if k.startswith("deleted_")] == [f"deleted_{s}" for s in suffixes]


def test_json_lone_other_is_a_plural_only_where_other_is_the_only_category() -> None:
    fmt = get_format("json")
    text = '{"files_other": "{{count}} files", "show_other": "Show the other tab"}\n'
    assert fmt.read(text, "ja").by_key()["files"].plurals == {"other": "{{count}} files"}
    assert fmt.read(text, "en").by_key()["show_other"].value == "Show the other tab"
    ordinal = '{"place_ordinal_one": "{{count}}st", "place_ordinal_other": "{{count}}th"}'
    assert set(fmt.read(ordinal, "en").by_key()) == {"place_ordinal_one", "place_ordinal_other"}


@pytest.mark.parametrize(
    ("locale", "forms"),
    [("de", ["one", "other"]), ("pl", ["one", "few", "many", "other"]), ("ja", ["other"])],
)
def test_yaml_target_is_under_its_locale_with_its_plural_forms(
    locale: str, forms: list[str]
) -> None:
    _, _, out = target("yaml", "en.yml", locale)
    data = pyyaml.safe_load(out)
    assert list(data) == [locale]
    assert list(data[locale]["inbox"]) == forms
    assert list(data[locale]["errors"]["too_long"]) == forms


@pytest.mark.parametrize(("locale", "nplurals"), [("de", 2), ("pl", 3), ("ja", 1)])
def test_po_target_has_language_plural_forms_and_nplurals_msgstrs(
    locale: str, nplurals: int
) -> None:
    _, _, out = target("po", "messages.pot", locale)
    po = polib.pofile(out)
    rules = gettext_plurals(locale)
    assert po.metadata["Language"] == locale
    assert po.metadata["Plural-Forms"] == rules.header
    assert po.metadata["Content-Type"] == "text/plain; charset=UTF-8"
    assert not po.metadata_is_fuzzy
    plural = [e for e in po if e.msgid_plural]
    assert len(plural) == 2
    for entry in plural:
        assert sorted(entry.msgstr_plural) == list(range(rules.nplurals))
    assert rules.nplurals == nplurals
    assert f'"Plural-Forms: nplurals={nplurals}; plural=' in out
    # every entry of the target is translated, none is fuzzy (the template header was)
    assert all("fuzzy" not in e.flags and e.translated() for e in po)


def test_po_polish_msgstrs_hold_one_few_many_in_gettext_order() -> None:
    fmt, _, out = target("po", "messages.pot", "pl")
    assert fmt.plural_forms("pl") == ("one", "few", "many")
    assert fmt.plural_forms("ja") == ("other",)
    entry = next(e for e in polib.pofile(out) if e.msgid == "%d new message")
    assert entry.msgstr_plural == {
        0: "%d new messages [one] (przetłumaczone)",
        1: "%d new messages [few] (przetłumaczone)",
        2: "%d new messages [many] (przetłumaczone)",
    }
    assert fmt.read(out, "pl").by_key()["%d new message"].plurals == {
        "one": "%d new messages [one] (przetłumaczone)",
        "few": "%d new messages [few] (przetłumaczone)",
        "many": "%d new messages [many] (przetłumaczone)",
    }


def test_po_template_plurals_map_msgid_and_msgid_plural() -> None:
    catalog = get_format("po").read(fixture("messages.pot"), "en")
    entry = catalog.by_key()["%(count)d note was deleted"]
    assert entry.plurals == {
        "one": "%(count)d note was deleted",
        "other": "%(count)d notes were deleted",
    }
    assert entry.meta["untranslated"] is True
    assert catalog.by_key()["menu\x04Open"].context == "menu"
    assert catalog.by_key()["door state\x04Open"].value == "Open"


@pytest.mark.parametrize("locale", ["pl", "pt-BR"])
def test_arb_target_has_its_locale_and_the_source_metadata_verbatim(locale: str) -> None:
    _, _, out = target("arb", "app_en.arb", locale)
    source, data = json.loads(fixture("app_en.arb")), json.loads(out)
    assert data["@@locale"] == locale.replace("-", "_")
    assert list(data) == list(source)
    for key in source:
        if key.startswith("@") and key != "@@locale":
            assert data[key] == source[key]
    assert data["unreadCount"].startswith("{count, plural, =0{No new messages}")


def test_arb_without_locale_gets_one_first() -> None:
    fmt = get_format("arb")
    src = (
        '{\n    "title": "Notes",\n    "@title": {\n        "description": "App title"\n    }\n}\n'
    )
    out = write(fmt, translate(fmt.read(src, "en"), "de"), src)
    assert out == src.replace('"Notes"', '"Notes (übersetzt)"').replace(
        "{\n", '{\n    "@@locale": "de",\n', 1
    )
    assert write(fmt, fmt.read(src, "en"), src, locale="en") == src


def test_csv_target_merges_its_column_and_keeps_the_rest() -> None:
    fmt, src = get_format("csv"), fixture("strings.csv")
    out = write(fmt, translate(fmt.read(src, "en"), "pl"), src, existing=src)
    before = list(csv.reader(io.StringIO(src, newline="")))
    after = list(csv.reader(io.StringIO(out, newline="")))
    assert after[0] == [*before[0], "pl"]
    assert [row[:-1] for row in after] == before
    assert after[1][-1] == "Tolk Notes (przetłumaczone)"
    # merging de next to it rewrites only de cells, keeping the pl column
    de = write(fmt, translate(fmt.read(src, "en"), "de"), src, existing=out)
    rows = list(csv.reader(io.StringIO(de, newline="")))
    assert [row[-1] for row in rows] == [row[-1] for row in after]
    assert rows[2][3] == "Save (übersetzt)"
    assert fmt.read(src, "fr").entries == []


def test_csv_keeps_delimiter_quoting_line_endings_and_bom() -> None:
    fmt = get_format("csv")
    src = '\ufeff"id";"en";"de"\r\n"ok";"OK";"OK"\r\n"bye";"Bye";""\r\n'
    out = write(fmt, translate(fmt.read(src, "en"), "de"), src, existing=src)
    assert out == (
        '\ufeff"id";"en";"de"\r\n"ok";"OK";"OK (übersetzt)"\r\n"bye";"Bye";"Bye (übersetzt)"\r\n'
    )
    added = write(fmt, translate(fmt.read(src, "en"), "ja"), src, existing=src)
    assert added.startswith('\ufeff"id";"en";"de";"ja"\r\n"ok";"OK";"OK";"OK (翻訳済み)"\r\n')


def test_properties_keeps_unicode_escapes_when_the_source_uses_them() -> None:
    fmt = get_format("properties")
    src = fixture("legacy.properties")
    legacy = write(fmt, translate(fmt.read(src, "en"), "de"), src)
    assert legacy.isascii()
    assert "shop.cart=Your cart (\\u00fcbersetzt)\n" in legacy  # lower-case hex, as the source
    assert java_properties(legacy)["shop.welcome"] == "Welcome to the café (übersetzt)"
    utf8 = target("properties", "messages.properties", "ja")[2]
    assert "app.title=Tolk Shop (翻訳済み)\n" in utf8
    assert "\\u" not in utf8


def test_properties_keeps_key_spelling_separators_and_line_breaks() -> None:
    out = target("properties", "messages.properties", "de")[2]
    assert "basket.heading = Your basket (übersetzt)\n" in out
    assert "basket.items: {0} items in your basket (übersetzt)\n" in out
    assert "basket.total   Total: {0} (übersetzt)\n" in out
    assert 'search\\ hint=Search for "name = value" or tag:red (übersetzt)\n' in out
    assert "checkout.note=Delivery takes two days.\\n\\\n    Pick-up is free. (übersetzt)\n" in out
    assert "error.path=Files are saved in C:\\\\Shop\\\\data (übersetzt)\n" in out


# --- law 5: removed keys, untranslatable entries, comments -------------------------------------

REMOVED = {
    "en.json": ["app.tagline", "onboarding.steps.1", "inbox.message"],
    "en.yml": ["app_name", "nav.sign_out", "inbox"],
    "messages.pot": ["Settings", "%d new message"],
    "messages.properties": ["basket.heading", "checkout.note"],
    "legacy.properties": ["shop.loading"],
    "strings.csv": ["app.delete"],
    "app_en.arb": ["greeting"],
}


@pytest.mark.parametrize(("name", "file"), CASES, ids=IDS)
def test_a_key_the_catalog_lacks_is_left_out(name: str, file: str) -> None:
    fmt, src = get_format(name), fixture(file)
    catalog = translate(fmt.read(src, "en"), "pl")
    removed = REMOVED[file]
    catalog.entries = [e for e in catalog.entries if e.key not in removed]
    out = write(fmt, catalog, src, existing=src if fmt.multi_locale else None)
    back = fmt.read(out, "pl")
    assert texts(back) == held(name, catalog, "pl")
    assert not set(removed) & set(texts(back))
    assert write(fmt, catalog, src, existing=out) == out


def test_removed_keys_leave_no_trace_but_others_keep_their_comments() -> None:
    fmt, src = get_format("yaml"), fixture("en.yml")
    catalog = translate(fmt.read(src, "en"), "pl")
    catalog.entries = [e for e in catalog.entries if e.key not in REMOVED["en.yml"]]
    out = write(fmt, catalog, src)
    assert "# Strings of the web app, grouped by page." in out
    assert "# %{attribute} is the name of the field" in out
    for gone in ("Shown in the browser tab", "Unread messages", "sign_out", "inbox:"):
        assert gone not in out
    # dropping every key of a mapping drops the mapping
    nav = [e for e in catalog.entries if not e.key.startswith("nav.")]
    assert "nav:" not in write(fmt, Catalog("pl", nav), src)

    fmt, src = get_format("properties"), fixture("messages.properties")
    catalog = translate(fmt.read(src, "en"), "pl")
    catalog.entries = [e for e in catalog.entries if e.key != "basket.heading"]
    out = write(fmt, catalog, src)
    assert "# Shown above the basket" not in out
    assert "! Checkout page" in out
    assert "# Placeholders {0}, {1} follow java.text.MessageFormat." in out

    fmt, src = get_format("arb"), fixture("app_en.arb")
    catalog = translate(fmt.read(src, "en"), "pl")
    catalog.entries = [e for e in catalog.entries if e.key != "greeting"]
    data = json.loads(write(fmt, catalog, src))
    assert "greeting" not in data and "@greeting" not in data


def test_json_array_keeps_its_length_and_emptied_objects_go() -> None:
    fmt, src = get_format("json"), fixture("en.json")
    catalog = translate(fmt.read(src, "en"), "de")
    catalog.entries = [
        e for e in catalog.entries if e.key not in ("onboarding.steps.1", "app.title")
    ]
    data = json.loads(write(fmt, catalog, src))
    assert data["onboarding"]["steps"] == [
        "Create an account (übersetzt)",
        None,
        "Write your first note (übersetzt)",
    ]
    assert list(data["app"]) == ["tagline"]
    catalog.entries = [e for e in catalog.entries if not e.key.startswith("app.")]
    assert "app" not in json.loads(write(fmt, catalog, src))


UNTRANSLATABLE = {
    "en.json": {"settings.maxNotes": "50", "settings.beta": "false", "inbox.placeholder": ""},
    "en.yml": {"notes.limit": "50", "date.order.0": ":year", "notes.placeholder": ""},
    "messages.properties": {"empty.label": ""},
}


@pytest.mark.parametrize("file", list(UNTRANSLATABLE))
def test_untranslatable_entries_are_kept_from_the_source(file: str) -> None:
    name = next(n for n, f in CASES if f == file)
    fmt, _, out = target(name, file, "pl")
    source = fmt.read(fixture(file), "en").by_key()
    back = fmt.read(out, "pl").by_key()
    for key, value in UNTRANSLATABLE[file].items():
        assert not source[key].translatable
        assert back[key].value == value
        assert not back[key].translatable
    if name == "json":
        assert json.loads(out)["settings"]["legacyId"] is None
    if name == "yaml":
        assert pyyaml.safe_load(out)["pl"]["date"]["order"] == [":year", ":month", ":day"]


COMMENTS = {
    "en.yml": {
        "app_name": "Shown in the browser tab and in the header",
        "inbox": "Unread messages in the inbox",
        "errors.blank": "%{attribute} is the name of the field",
        "nav.home": None,
    },
    "messages.pot": {
        "Welcome back, {name}!": (
            "Translators: greeting on the dashboard; {name} is the user's first name"
        ),
        "menu\x04Open": "Translators: a verb on a menu item",
        "Settings": None,
    },
    "messages.properties": {
        "basket.heading": "Shown above the basket",
        "checkout.terms": "Checkout page",
        "app.title": None,
    },
    "strings.csv": {"app.save": "Button that saves the note", "quote": None},
    "app_en.arb": {"greeting": "Greeting on the home page", "lastSeen": None},
}


@pytest.mark.parametrize("file", list(COMMENTS))
def test_comments_reach_the_entry_and_stay_in_the_target(file: str) -> None:
    name = next(n for n, f in CASES if f == file)
    fmt, _, out = target(name, file, "de")
    entries = fmt.read(fixture(file), "en").by_key()
    for key, comment in COMMENTS[file].items():
        assert entries[key].comment == comment
        if comment:
            assert comment in out


def test_po_comments_references_and_flags_stay_in_the_target() -> None:
    _, _, out = target("po", "messages.pot", "de")
    src = fixture("messages.pot")
    for marker in ("#. ", "#: ", "#, python-format", "#, python-brace-format", "msgctxt "):
        assert out.count(marker) == src.count(marker)
    assert "#, fuzzy" not in out


# --- PO: merging into an existing translation --------------------------------------------------


def test_po_existing_translation_keeps_its_header_comments_and_states(tmp_path: Path) -> None:
    fmt, pot, old = get_format("po"), fixture("messages.pot"), fixture("de.po")
    catalog = fmt.read(old, "de")
    assert catalog.by_key()["Settings"].value == "Einstellungen"
    assert catalog.by_key()["Last saved at %(time)s"].meta["fuzzy"] is True
    assert catalog.by_key()["%d new message"].plurals == {
        "one": "%d neue Nachricht",
        "other": "%d neue Nachrichten",
    }
    # unchanged: the same file, less its obsolete entry (a key the source no longer has)
    same = write(fmt, catalog, pot, existing=old)
    assert same == old[: old.index("\n#~ msgid")]

    catalog.by_key()["Welcome back, {name}!"].value = "Willkommen zurück, {name}!"
    catalog.by_key()["Last saved at %(time)s"].value = "Zuletzt gespeichert um %(time)s"
    out = write(fmt, catalog, pot, existing=old)
    po = polib.pofile(out)
    assert po.metadata["Last-Translator"] == "Jana Richter <jana@example.com>"
    entry = {e.msgid: e for e in po}
    assert entry["Welcome back, {name}!"].msgstr == "Willkommen zurück, {name}!"
    assert entry["Settings"].tcomment == "Checked against the style guide, 2024-05"
    saved = entry["Last saved at %(time)s"]
    assert saved.flags == ["python-format"] and saved.previous_msgid is None
    assert entry['Delete "%s"?'].msgstr == ""  # still untranslated: gettext shows the msgid
    assert msgfmt(out, tmp_path, "--check").returncode == 0

    # a fuzzy entry whose text the catalog keeps stays fuzzy, with its previous msgid
    assert '#, fuzzy, python-format\n#| msgid "Saved at %(time)s"' in same


# --- law 6: each target passes the platform's own tooling --------------------------------------


@pytest.mark.parametrize("locale", TARGETS)
def test_po_targets_pass_msgfmt_check(locale: str, tmp_path: Path) -> None:
    _, _, out = target("po", "messages.pot", locale)
    checked = msgfmt(out, tmp_path, "--check-format", "--check-header")
    assert checked.returncode == 0, checked.stderr
    full = msgfmt(out, tmp_path, "--check", "--statistics")
    assert full.returncode == 0, full.stderr
    assert "11 translated messages." in full.stderr
    for field in ("Language", "Plural-Forms", "Content-Type"):
        assert f"'{field}'" not in full.stderr


def test_msgfmt_rejects_what_it_should(tmp_path: Path) -> None:
    """The tooling check can fail: a target with a dropped format directive is refused."""
    fmt, catalog, _ = target("po", "messages.pot", "pl")
    catalog.by_key()['Delete "%s"?'].value = "Usunąć?"
    out = write(fmt, catalog, fixture("messages.pot"))
    assert msgfmt(out, tmp_path, "--check-format").returncode != 0


@pytest.mark.parametrize("locale", TARGETS)
def test_json_and_arb_targets_are_what_their_readers_accept(locale: str) -> None:
    out = target("json", "en.json", locale)[2]
    assert json.loads(out)["app"]["title"] == f"Tolk Notes ({DONE[locale]})"
    assert out.endswith("}\n") and '\n  "app": {\n    "title"' in out  # two spaces, as the source
    arb = json.loads(target("arb", "app_en.arb", locale)[2])
    assert arb["@@locale"] == locale
    for key, value in arb.items():  # what Flutter's gen_l10n requires of an ARB file
        if key.startswith("@@"):
            continue
        if key.startswith("@"):
            assert isinstance(value, dict) and key[1:] in arb
        else:
            assert isinstance(value, str) and value.endswith(f"({DONE[locale]})")


@pytest.mark.parametrize("locale", TARGETS)
def test_yaml_targets_load_in_pyyaml_and_ruamel(locale: str) -> None:
    out = target("yaml", "en.yml", locale)[2]
    plain = pyyaml.safe_load(out)
    assert plain == YAML(typ="safe", pure=True).load(out)
    assert plain[locale]["nav"]["home"] == f"Home ({DONE[locale]})"
    assert plain[locale]["notes"]["help"].startswith("Notes are saved as you type.\n")


@pytest.mark.parametrize("locale", TARGETS)
def test_csv_targets_parse_with_the_csv_module(locale: str) -> None:
    _, catalog, out = target("csv", "strings.csv", locale)
    header, *rows = list(csv.reader(io.StringIO(out, newline="")))
    assert header == ["key", "description", "en", "de", *([locale] if locale != "de" else [])]
    assert {len(row) for row in rows} == {len(header)}
    column = header.index(locale)
    assert {row[0]: row[column] for row in rows} == texts(catalog)


@pytest.mark.parametrize("file", ["messages.properties", "legacy.properties"])
@pytest.mark.parametrize("locale", TARGETS)
def test_properties_targets_read_the_same_in_java(locale: str, file: str) -> None:
    src = fixture(file)
    fmt, catalog, out = target("properties", file, locale)
    assert java_properties(src) == {e.key: e.value for e in fmt.read(src, "en").entries}
    expected = {e.key: e.value for e in fmt.read(src, "en").entries if not e.translatable}
    expected |= texts(catalog)
    assert java_properties(out) == expected


# --- law 7: malformed input is a FormatError with a one-line message ---------------------------

MALFORMED = [
    ("json", '{"app": {"title": "Notes",}}'),
    ("json", '["a", "b"]'),
    ("json", '{"a": "x", "a": "y"}'),
    ("json", '{"a.b": "x", "a": {"b": "y"}}'),
    ("json", "[" * 100_000),
    ("yaml", "en:\n\tgreeting: Hello\n"),
    ("yaml", "en:\n  greeting: [Hello\n"),
    ("yaml", "- Hello\n- Bye\n"),
    ("yaml", "en:\n  a: x\n  a: y\n"),
    ("yaml", "en:\n  a.b: x\n  a:\n    b: y\n"),
    ("po", 'msgid "Hello"\nmsgstr "Hallo\n'),
    ("po", 'msgid "Hello"\nmsgstr "Hallo"\nmsgid "Hello"\nmsgstr "Servus"\n'),
    ("po", 'msgid "Hello"\nbogus line\n'),
    ("properties", "greeting=caf\\u00g9\n"),
    ("properties", "a=1\na=2\n"),
    ("csv", "name,en,de\nhello,Hello,Hallo\n"),
    ("csv", 'key,en\nhello,"Hello\n'),
    ("csv", ""),
    ("arb", '{"@@locale": "en", "count": 3}'),
    ("arb", '{"@@locale": "en",'),
]


@pytest.mark.parametrize(
    ("name", "text"), MALFORMED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MALFORMED)]
)
def test_malformed_input_is_a_one_line_format_error(name: str, text: str) -> None:
    fmt = get_format(name)
    with pytest.raises(FormatError) as read_error:
        fmt.read(text, "en")
    with pytest.raises(FormatError) as write_error:
        fmt.write(Catalog("de"), locale="de", source_locale="en", source_text=text, existing=None)
    for error in (read_error.value, write_error.value):
        message = str(error)
        assert message and "\n" not in message and len(message) < 200


# --- JSON layouts, and property tests ----------------------------------------------------------

STRINGS = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)


@pytest.mark.parametrize(
    "style",
    [
        {"indent": 4},
        {"indent": "\t"},
        {"separators": (",", ":")},
        {"indent": 2, "ensure_ascii": True},
    ],
    ids=["four-spaces", "tab", "minified", "ascii-escapes"],
)
@pytest.mark.parametrize("end", ["\n", "\r\n", ""], ids=["lf", "crlf", "no-final-newline"])
def test_json_target_keeps_the_source_layout(style: dict[str, Any], end: str) -> None:
    def dump(data: Any) -> str:
        text = json.dumps(data, **{"ensure_ascii": False, **style})
        return text.replace("\n", end) + end if end else text

    fmt = get_format("json")
    src = dump({"home": {"title": "Café", "items_one": "{{count}} item", "items_other": "x"}})
    out = write(fmt, translate(fmt.read(src, "en"), "ja"), src)
    assert out == dump(
        {"home": {"title": "Café (翻訳済み)", "items_other": "x [other] (翻訳済み)"}}
    )


PLAIN_KEYS = st.text(st.characters(exclude_characters="._", exclude_categories=["Cs"]), min_size=1)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(PLAIN_KEYS, STRINGS, min_size=1, max_size=6), st.data())
def test_json_any_strings_round_trip(source: dict[str, str], data: st.DataObject) -> None:
    fmt = get_format("json")
    src = json.dumps({"root": source}, indent=2, ensure_ascii=False) + "\n"
    assert write(fmt, fmt.read(src, "en"), src, locale="en") == src
    wanted = {k: data.draw(STRINGS) for k, v in source.items() if v}
    catalog = Catalog("de", [Entry(f"root.{k}", value=v) for k, v in wanted.items()])
    out = write(fmt, catalog, src)
    expected = {k: wanted.get(k, v) for k, v in source.items()}
    assert json.loads(out) == {"root": expected}
    assert {e.key: e.value for e in fmt.read(out, "de").entries} == {
        f"root.{k}": v for k, v in expected.items()
    }


KEYS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(KEYS, STRINGS.filter(bool), min_size=1, max_size=6), st.data(), st.booleans()
)
def test_properties_any_text_round_trips_and_reads_the_same_in_java(
    source: dict[str, str], data: st.DataObject, ascii_only: bool
) -> None:
    fmt = get_format("properties")
    style = Style(ascii_only=ascii_only)
    src = "".join(f"{style.escape(k, key=True)}={style.escape(v)}\n" for k, v in source.items())
    assert java_properties(src) == source
    assert texts(fmt.read(src, "en")) == source
    assert write(fmt, fmt.read(src, "en"), src, locale="en") == src
    wanted = {k: data.draw(STRINGS.filter(bool)) for k in source}
    catalog = Catalog("de", [Entry(k, value=v) for k, v in wanted.items()])
    out = write(fmt, catalog, src)
    assert java_properties(out) == wanted
    assert texts(fmt.read(out, "de")) == wanted
    if ascii_only and any(not c.isascii() for c in src):
        assert out.isascii()


# --- edge cases of each format -----------------------------------------------------------------


def yaml_target(src: str, locale: str, drop: tuple[str, ...] = (), source: str = "en") -> str:
    fmt = get_format("yaml")
    catalog = translate(fmt.read(src, source), locale)
    catalog.entries = [e for e in catalog.entries if e.key not in drop]
    return fmt.write(catalog, locale=locale, source_locale=source, source_text=src, existing=None)


def test_yaml_without_a_locale_root_is_plain() -> None:
    src = "greeting: Hi\nnested:\n  key: Value\n"
    assert set(get_format("yaml").read(src, "en").by_key()) == {"greeting", "nested.key"}
    assert yaml_target(src, "de") == "greeting: Hi (übersetzt)\nnested:\n  key: Value (übersetzt)\n"


def test_yaml_flow_plural_and_rails_root_spelling() -> None:
    src = 'en_US:\n  inbox: {one: "%{count} message", other: "%{count} messages"}\n'
    out = yaml_target(src, "pl", source="en-US")
    assert list(pyyaml.safe_load(out)) == ["pl"]
    assert "inbox: {one: " in out
    assert list(pyyaml.safe_load(out)["pl"]["inbox"]) == ["one", "few", "many", "other"]
    assert list(pyyaml.safe_load(yaml_target(src, "pt-BR", source="en-US"))) == ["pt_BR"]


def test_yaml_layout_crlf_offsets_explicit_start_and_null_spelling_survive() -> None:
    src = "---\r\nen:\r\n  # c\r\n  a: A\r\n  none: ~\r\n  list:\r\n  - one\r\n  - two\r\n"
    fmt = get_format("yaml")
    assert (
        fmt.write(
            fmt.read(src, "en"), locale="en", source_locale="en", source_text=src, existing=None
        )
        == src
    )
    assert yaml_target(src, "de") == src.replace("en:", "de:").replace(
        "A\r", "A (übersetzt)\r"
    ).replace("one\r", "one (übersetzt)\r").replace("two\r", "two (übersetzt)\r")


def test_yaml_removed_block_scalar_goes_whole_and_neighbours_keep_their_comments() -> None:
    src = (
        "en:\n  a: A\n\n  # about help\n  help: |\n    Saved as you type.\n    # not a comment\n"
        "  # about b\n  b: B\n\n  c: C\n"
    )
    out = yaml_target(src, "de", drop=("help",))
    assert out == "en:\n  a: A\n\n  # about b\n  b: B\n\n  c: C\n".replace("en:", "de:").replace(
        ": A", ": A (übersetzt)"
    ).replace(": B", ": B (übersetzt)").replace(": C", ": C (übersetzt)")
    assert get_format("yaml").read(src, "en").by_key()["b"].comment == "about b"
    gone_b = yaml_target(src, "de", drop=("b",))
    assert "about b" not in gone_b and "\n\n\n" not in gone_b and "# not a comment" in gone_b


def test_yaml_mapping_in_a_sequence_loses_its_first_key() -> None:
    src = "en:\n  items:\n    - name: First\n      note: N1\n    - name: Second\n"
    out = yaml_target(src, "de", drop=("items.0.name",))
    assert pyyaml.safe_load(out) == {
        "de": {"items": [{"note": "N1 (übersetzt)"}, {"name": "Second (übersetzt)"}]}
    }


def test_yaml_new_texts_that_yaml_11_reads_as_other_types_are_quoted() -> None:
    fmt = get_format("yaml")
    src = "en:\n  a: A\n  b: B\n  c: C\n  d: D\n"
    words = {"a": "No", "b": "yes", "c": "1:20", "d": "null"}
    catalog = Catalog("no", [Entry(k, value=v) for k, v in words.items()])
    out = fmt.write(catalog, locale="no", source_locale="en", source_text=src, existing=None)
    assert pyyaml.safe_load(out) == {"no": words}  # Rails reads YAML 1.1 as PyYAML does


def test_source_locale_keeps_its_own_plural_categories() -> None:
    """Rails and i18next English files often carry ``zero``: writing the source locale's own
    file keeps it; a target gets its own categories only."""
    src = "en:\n  inbox:\n    zero: No messages\n    one: One message\n    other: Many\n"
    fmt = get_format("yaml")
    catalog = fmt.read(src, "en")
    assert catalog.by_key()["inbox"].plurals == {
        "zero": "No messages",
        "one": "One message",
        "other": "Many",
    }
    catalog.by_key()["inbox"].plurals = {"zero": "None", "one": "One", "other": "Many"}
    out = fmt.write(catalog, locale="en", source_locale="en", source_text=src, existing=src)
    assert out == "en:\n  inbox:\n    zero: None\n    one: One\n    other: Many\n"
    assert list(pyyaml.safe_load(yaml_target(src, "de"))["de"]["inbox"]) == ["one", "other"]

    fmt = get_format("json")
    src = '{"inbox_zero": "No messages", "inbox_one": "One", "inbox_other": "Many"}'
    catalog = fmt.read(src, "en")
    catalog.by_key()["inbox"].plurals = {"zero": "None", "one": "One", "other": "Many"}
    assert fmt.write(catalog, locale="en", source_locale="en", source_text=src, existing=src) == (
        src.replace("No messages", "None")
    )


def test_po_without_header_or_with_crlf_round_trips(tmp_path: Path) -> None:
    fmt = get_format("po")
    src = 'msgid "Hello"\nmsgstr ""\n\nmsgid "%d file"\nmsgid_plural "%d files"\nmsgstr[0] ""\n'
    src += 'msgstr[1] ""\n'
    for text in (src, src.replace("\n", "\r\n")):
        assert write(fmt, fmt.read(text, "en"), text, existing=text) == text
    out = write(fmt, translate(fmt.read(src, "en"), "pl"), src)
    assert polib.pofile(out).metadata["Language"] == "pl"
    assert msgfmt(out, tmp_path, "--check").returncode == 0
    crlf = write(fmt, translate(fmt.read(src, "en"), "pl"), src.replace("\n", "\r\n"))
    assert crlf == out.replace("\n", "\r\n")


def test_po_language_is_spelled_as_gettext_spells_it(tmp_path: Path) -> None:
    fmt = get_format("po")
    assert fmt.path_locale("pt-BR") == "pt_BR"
    out = write(
        fmt, translate(fmt.read(fixture("messages.pot"), "en"), "pt-BR"), fixture("messages.pot")
    )
    assert polib.pofile(out).metadata["Language"] == "pt_BR"
    assert msgfmt(out, tmp_path, "--check").returncode == 0


def test_csv_appends_keys_it_lacks_and_clears_cells_the_catalog_lacks() -> None:
    fmt, src = get_format("csv"), fixture("strings.csv")
    catalog = Catalog("de", [Entry("app.title", value="Titel"), Entry("new.key", value="Neu")])
    out = write(fmt, catalog, src, existing=src)
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert rows[1] == ["app.title", "Window title", "Tolk Notes", "Titel"]
    assert rows[2] == ["app.save", "Button that saves the note", "Save", ""]
    assert rows[-1] == ["new.key", "", "", "Neu"]
    assert texts(fmt.read(out, "de")) == {"app.title": "Titel", "new.key": "Neu"}


YAML_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(YAML_TEXT, min_size=1, max_size=8))
def test_yaml_any_text_reads_back_the_same_in_pyyaml(words: list[str]) -> None:
    """Whatever a translation holds (quotes, ``: ``, ``#``, line breaks, ``yes``), written in
    place of a plain, quoted or literal value, YAML 1.1 readers get the same string back."""
    fmt = get_format("yaml")
    styles = ["k{}: text", 'k{}: "text"', "k{}: 'text'", "k{}: |\n    text\n    more"]
    src = "en:\n" + "".join(f"  {styles[i % 4].format(i)}\n" for i in range(len(words)))
    catalog = Catalog("de", [Entry(f"k{i}", value=w) for i, w in enumerate(words)])
    out = fmt.write(catalog, locale="de", source_locale="en", source_text=src, existing=None)
    assert pyyaml.safe_load(out) == {"de": {f"k{i}": w for i, w in enumerate(words)}}
    read = {e.key: e.value for e in fmt.read(out, "de").entries}
    assert read == {f"k{i}": w for i, w in enumerate(words)}


# pieces of each syntax, for texts that are almost, but not always, valid
PIECES = {
    "json": ["{", "}", "[", "]", '"a"', '"a_one"', '"a_other"', ":", ",", "1", "null", '"x.y"'],
    "arb": ["{", "}", "[", "]", '"a"', '"@a"', '"@@locale"', ":", ",", "1", '{"description":"d"}'],
    "yaml": [
        "en:",
        "\n",
        "  ",
        "a:",
        " b",
        "- ",
        "#c",
        "&x ",
        "*x",
        "<<: ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "one:",
        "other:",
        '"q"',
        "'s'",
        "|",
        "~",
        ": ",
        "\t",
        "---",
    ],
    "po": [
        "msgid ",
        "msgstr ",
        "msgctxt ",
        "msgid_plural ",
        "msgstr[0] ",
        "msgstr[1] ",
        '"a"',
        '""',
        "\n",
        "#. c",
        "#: f:1",
        "#, fuzzy",
        "#~ ",
        '"Language: pl\\n"',
    ],
    "properties": ["a", "=", ":", " ", "\\", "\n", "\r", "#", "!", "\\u00e9", "\\u", "é"],
    "csv": ["key", "id", "en", "de", ",", ";", "\t", '"', "\n", "\r\n", "x", " ", "\ufeff"],
}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(PIECES)), st.data())
def test_any_text_reads_as_a_catalog_or_a_format_error(name: str, data: st.DataObject) -> None:
    """Never another exception; and what reads as a source writes a target that reads."""
    text = "".join(data.draw(st.lists(st.sampled_from(PIECES[name]), max_size=25)))
    fmt = get_format(name)
    try:
        catalog = fmt.read(text, "en")
    except FormatError as error:
        assert "\n" not in str(error)
        return
    out = write(fmt, translate(catalog, "pl"), text, existing=text if fmt.multi_locale else None)
    assert texts(fmt.read(out, "pl")) == held(name, translate(catalog, "pl"), "pl")
