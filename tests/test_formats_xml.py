"""The laws of the file formats (``client.formats.model``) for XLIFF 1.2 and 2.0, Android
``strings.xml``, Apple ``.strings``/``.stringsdict`` and Xcode String Catalogs, on fixtures in
each platform's usual style (``tests/data/formats/xml``), with each written target checked
by a reader that is not the format's own."""

from __future__ import annotations

import json
import plistlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from client.formats import get_format
from client.formats.model import Catalog, Entry, FileFormat, FormatError
from client.formats.xcstrings import xcode_sort_key
from client.text import decode
from localization.plurals import plural_categories

DATA = Path(__file__).parent / "data" / "formats" / "xml"
TARGETS = ("de", "pl", "ja")
XLIFF12 = "urn:oasis:names:tc:xliff:document:1.2"
XLIFF20 = "urn:oasis:names:tc:xliff:document:2.0"


@dataclass(frozen=True)
class Case:
    id: str
    format: str
    path: str
    removable: str  # a key whose removal from the source the tests try
    comments: tuple[tuple[str, str], ...]  # keys and (a part of) their comment
    untranslatable: tuple[str, ...]

    @property
    def fmt(self) -> FileFormat:
        return get_format(self.format)

    def source(self) -> str:
        return decode((DATA / self.path).read_bytes()).text


CASES = [
    Case(
        "xliff12",
        "xliff",
        "xliff12/en.xlf",
        "app.farewell",
        (("app.title", "Title of the main screen"), ("app.quote", "Keep the quotes\nAngle")),
        ("settings.brand",),
    ),
    Case(
        "xliff12-files",
        "xliff",
        "xliff12/xcode-export.xliff",
        "Mail/en.lproj/Localizable.strings#title",
        (("Mail/en.lproj/Localizable.strings#title", "Title of the unified mailbox"),),
        (),
    ),
    Case(
        "xliff20",
        "xliff",
        "xliff20/en.xlf",
        "app.farewell",
        (("app.greeting", "Shown after login\n{name} is the first name"),),
        ("app.brand",),
    ),
    Case(
        "android",
        "android",
        "android/values/strings.xml",
        "farewell",
        (("inbox_title", "Title of the inbox screen"), ("unread_messages", "Number of unread")),
        ("app_name", "home_alias", "sort_options[0]", "server_hosts[0]"),
    ),
    Case(
        "strings",
        "ios-strings",
        "ios/en.lproj/Localizable.strings",
        "farewell",
        (("inbox.title", "Title of the inbox screen"), ("draft.saved", "Confirmation after")),
        (),
    ),
    Case(
        "strings-utf16",
        "ios-strings",
        "ios/utf16.lproj/Localizable.strings",
        "sent",
        (("sent", "Shown when a message was sent"),),
        (),
    ),
    Case(
        "stringsdict",
        "ios-strings",
        "ios/en.lproj/Localizable.stringsdict",
        "unread_messages#messages",
        (),
        ("Tap to open",),
    ),
    Case(
        "xcstrings",
        "xcstrings",
        "xcstrings/Localizable.xcstrings",
        "farewell",
        (("greeting", "Greeting after login"),),
        ("Tap to open", "Tolk"),
    ),
]
CASE_IDS = [case.id for case in CASES]


def by_id(name: str) -> Case:
    return next(case for case in CASES if case.id == name)


def translate(text: str, locale: str) -> str:
    """A stand-in translation that keeps markup and placeholders and adds what escaping must
    survive: both quotes, an apostrophe, non-ASCII letters, a backslash."""
    return f'{text} [{locale}: l\'été "süß" \\ ✓]'


def translated(source: Catalog, locale: str) -> Catalog:
    """The catalog a pull would give a format: the translatable entries, translated, with
    exactly the target's plural categories."""
    entries = []
    for entry in source.entries:
        if not entry.translatable:
            continue
        if entry.plurals is not None:
            forms = {
                category: translate(entry.plurals.get(category, entry.plurals["other"]), locale)
                + f" ({category})"
                for category in plural_categories(locale)
            }
            entries.append(Entry(entry.key, plurals=forms, comment=entry.comment))
        else:
            entries.append(Entry(entry.key, value=translate(entry.value or "", locale)))
    return Catalog(locale=locale, entries=entries)


def write_target(case: Case, locale: str, catalog: Catalog | None = None, **kw: Any) -> str:
    src = kw.pop("source_text", case.source())
    catalog = catalog if catalog is not None else translated(case.fmt.read(src, "en"), locale)
    existing = kw.pop("existing", src if case.fmt.multi_locale else None)
    return case.fmt.write(
        catalog, locale=locale, source_locale="en", source_text=src, existing=existing
    )


def texts(catalog: Catalog) -> dict[str, str | dict[str, str]]:
    return {entry.key: entry.text() for entry in catalog.entries if entry.translatable}


# --- law 1: an unchanged source file round-trips byte for byte --------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_unchanged_source_round_trips_byte_for_byte(case: Case) -> None:
    src = case.source()
    catalog = case.fmt.read(src, "en")
    assert catalog.entries
    out = case.fmt.write(catalog, locale="en", source_locale="en", source_text=src, existing=src)
    assert out == src


def test_utf16_source_round_trips_as_bytes() -> None:
    raw = (DATA / "ios/utf16.lproj/Localizable.strings").read_bytes()
    assert raw.startswith(b"\xff\xfe")
    fmt = get_format("ios-strings")
    decoded = decode(raw)
    text = decoded.text
    out = fmt.write(
        fmt.read(text, "en"), locale="en", source_locale="en", source_text=text, existing=text
    )
    assert decoded.encode(out) == raw
    target = decoded.encode(write_target(by_id("strings-utf16"), "de"))
    assert target.startswith(b"\xff\xfe")
    assert "Message sent ✓ [de:" in target.decode("utf-16")
    assert decode(b"\xef\xbb\xbfa").encode("x") == b"\xef\xbb\xbfx"
    assert decode(b"\xfe\xff\x00a").encode("x") == b"\xfe\xff\x00x"
    assert decode(b"\xfe\xff" + "é".encode("utf-16-be")).text == "é"


# --- laws 2 and 3: a written target reads back, and re-writing it changes nothing -------------


@pytest.mark.parametrize("locale", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_written_target_reads_back_the_catalog(case: Case, locale: str) -> None:
    src = case.source()
    catalog = translated(case.fmt.read(src, "en"), locale)
    out = write_target(case, locale, catalog)
    back = case.fmt.read(out, locale)
    assert texts(back) == texts(catalog)
    # the source's key order
    assert [e.key for e in back.entries if e.translatable] == [e.key for e in catalog.entries]
    # and every text differs from the source: the target really holds the translations
    source_texts = texts(case.fmt.read(src, "en"))
    assert all(back_text != source_texts[key] for key, back_text in texts(back).items())


@pytest.mark.parametrize("locale", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rewriting_a_written_target_is_byte_identical(case: Case, locale: str) -> None:
    first = write_target(case, locale)
    again = write_target(case, locale, existing=first)
    assert again == first
    if case.fmt.multi_locale:  # the catalog is its own source: write into the written file
        assert write_target(case, locale, source_text=first, existing=first) == first


# --- law 4: locale markers and exactly the target's plural forms ------------------------------


def test_cldr_categories_of_the_test_locales() -> None:
    assert plural_categories("pl") == ("one", "few", "many", "other")
    assert plural_categories("ja") == ("other",)
    assert plural_categories("de") == ("one", "other")


@pytest.mark.parametrize("locale", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_targets_have_exactly_their_plural_forms(case: Case, locale: str) -> None:
    back = case.fmt.read(write_target(case, locale), locale)
    plural_entries = [e for e in back.entries if e.plurals is not None and e.translatable]
    source_plurals = [e for e in case.fmt.read(case.source(), "en").entries if e.plurals]
    assert len(plural_entries) == len(source_plurals)
    for entry in plural_entries:
        assert entry.plurals is not None
        assert tuple(entry.plurals) == plural_categories(locale)


@pytest.mark.parametrize("locale", TARGETS)
def test_xliff12_target_markers(locale: str) -> None:
    for case in (by_id("xliff12"), by_id("xliff12-files")):
        root = etree.fromstring(write_target(case, locale).encode())
        files = root.findall(f"{{{XLIFF12}}}file")
        assert files and all(f.get("target-language") == locale for f in files)
        assert all(f.get("source-language") == "en" for f in files)
        targets = root.findall(f".//{{{XLIFF12}}}target")
        units = root.findall(f".//{{{XLIFF12}}}trans-unit")
        translatable = [u for u in units if u.get("translate") != "no"]
        assert len(targets) == len(translatable)
        assert all(t.get("state") == "translated" for t in targets)
        for unit in translatable:  # <target> right after <source>
            assert [etree.QName(c).localname for c in unit][:2] == ["source", "target"]


@pytest.mark.parametrize("locale", TARGETS)
def test_xliff20_target_markers(locale: str) -> None:
    out = write_target(by_id("xliff20"), locale)
    # the root keeps its spelling (version before xmlns), trgLang right after srcLang
    assert f'<xliff version="2.0" xmlns="{XLIFF20}" srcLang="en" trgLang="{locale}">' in out
    root = etree.fromstring(out.encode())
    assert root.get("trgLang") == locale and root.get("srcLang") == "en"
    for unit in root.iter(f"{{{XLIFF20}}}unit"):
        for segment in unit.iter(f"{{{XLIFF20}}}segment"):
            has_target = segment.find(f"{{{XLIFF20}}}target") is not None
            assert has_target == (unit.get("translate") != "no")
            assert (segment.get("state") == "translated") == has_target


@pytest.mark.parametrize("locale", TARGETS)
def test_android_plural_items_and_arrays(locale: str) -> None:
    root = etree.fromstring(write_target(by_id("android"), locale).encode())
    quantities = [i.get("quantity") for i in root.find("plurals[@name='unread_messages']")]
    assert tuple(quantities) == plural_categories(locale)
    assert len(root.findall("string-array[@name='weekdays']/item")) == 3
    # the reference item of an array stays, in its place
    assert root.find("string-array[@name='sort_options']/item").text == "@string/inbox_title"


@pytest.mark.parametrize("locale", TARGETS)
def test_stringsdict_plural_keys(locale: str) -> None:
    data = plistlib.loads(write_target(by_id("stringsdict"), locale).encode())
    variable = data["unread_messages"]["messages"]
    assert list(variable) == [
        "NSStringFormatSpecTypeKey",
        "NSStringFormatValueTypeKey",
        *plural_categories(locale),
    ]
    assert data["unread_messages"]["NSStringLocalizedFormatKey"] == "%#@messages@"
    assert "zero" not in data["files_in_folders"]["files"]  # no CLDR zero in de, pl, ja
    assert data["files_in_folders"]["NSStringLocalizedFormatKey"].startswith(
        "%#@files@ in %#@folders@ ["
    )


@pytest.mark.parametrize("locale", TARGETS)
def test_xcstrings_target_variations(locale: str) -> None:
    data = json.loads(write_target(by_id("xcstrings"), locale))
    messages = data["strings"]["%lld messages"]["localizations"][locale]
    assert list(messages["variations"]["plural"]) == sorted(plural_categories(locale))
    assert all(
        unit["stringUnit"]["state"] == "translated"
        for unit in messages["variations"]["plural"].values()
    )
    people = data["strings"]["liked_posts"]["localizations"][locale]["substitutions"]["people"]
    assert people["argNum"] == 1 and people["formatSpecifier"] == "lld"
    assert list(people["variations"]["plural"]) == sorted(plural_categories(locale))


def test_path_locales() -> None:
    android = get_format("android")
    assert android.path_locale("de") == "de"
    assert android.path_locale("pt-BR") == "pt-rBR"
    assert android.path_locale("pt_BR") == "pt-rBR"
    assert android.path_locale("zh-Hant") == "b+zh+Hant"
    assert android.path_locale("sr-Latn") == "b+sr+Latn"
    assert android.path_locale("zh-Hant-TW") == "b+zh+Hant+TW"
    assert android.path_locale("es-419") == "b+es+419"
    assert android.path_locale("fil") == "b+fil"
    apple = get_format("ios-strings")
    assert apple.path_locale("pt-BR") == "pt-BR"
    assert apple.path_locale("zh-Hans") == "zh-Hans"


# --- law 5: removed keys, comments, untranslatable entries ------------------------------------


def _without(case: Case, src: str) -> str:
    """The source with ``case.removable`` taken out, edited as a developer would."""
    if case.format == "xliff" and case.id != "xliff12-files":
        return re.sub(r'\s*<(trans-unit|unit) id="app\.farewell">.*?</\1>', "", src, flags=re.S)
    if case.id == "xliff12-files":
        return re.sub(
            r'\s*<trans-unit id="title" xml:space="preserve">\s*<source>All Mail.*?'
            r"</trans-unit>",
            "",
            src,
            flags=re.S,
        )
    if case.id == "android":
        return src.replace('    <string name="farewell">Goodbye</string>\n', "")
    if case.id == "strings":
        return src.replace('\nfarewell = "Goodbye";\n', "")
    if case.id == "strings-utf16":
        return src[: src.index("\n/* Shown when")] + "\n"
    if case.id == "stringsdict":
        data = plistlib.loads(src.encode())
        del data["unread_messages"]
        return plistlib.dumps(data, sort_keys=False).decode()
    data = json.loads(src)
    del data["strings"]["farewell"]
    from client.formats.xcstrings import dumps

    return dumps(data)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_removed_source_key_leaves_the_target(case: Case) -> None:
    src = case.source()
    old_target = write_target(case, "de")
    assert case.removable in texts(case.fmt.read(old_target, "de"))
    edited = _without(case, src)
    assert case.removable not in {e.key for e in case.fmt.read(edited, "en").entries}
    catalog = translated(case.fmt.read(edited, "en"), "de")
    new_target = write_target(case, "de", catalog, source_text=edited, existing=old_target)
    back = case.fmt.read(new_target, "de")
    assert case.removable not in {e.key for e in back.entries}
    assert texts(back) == texts(catalog)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_key_the_catalog_lacks_is_left_out(case: Case) -> None:
    full = translated(case.fmt.read(case.source(), "en"), "de")
    partial = Catalog("de", [e for e in full.entries if e.key != case.removable])
    back = case.fmt.read(write_target(case, "de", partial), "de")
    assert case.removable not in texts(back)
    assert texts(back) == texts(partial)


@pytest.mark.parametrize("case", [c for c in CASES if c.comments], ids=lambda c: c.id)
def test_comments_reach_the_entries_and_stay_in_targets(case: Case) -> None:
    entries = case.fmt.read(case.source(), "en").by_key()
    for key, comment in case.comments:
        assert comment in (entries[key].comment or "")
    target = case.fmt.read(write_target(case, "de"), "de").by_key()
    for key, comment in case.comments:
        assert comment in (target[key].comment or "")


def test_comments_not_attached_across_a_blank_line() -> None:
    android = get_format("android").read(by_id("android").source(), "en").by_key()
    assert android["app_name"].comment is None
    assert android["apostrophe"].comment is None
    strings = get_format("ios-strings").read(by_id("strings").source(), "en").by_key()
    assert strings["multiline"].comment is None
    assert strings["path"].comment is None  # its comment is on its own line, after it


@pytest.mark.parametrize("case", [c for c in CASES if c.untranslatable], ids=lambda c: c.id)
def test_untranslatable_entries(case: Case) -> None:
    entries = case.fmt.read(case.source(), "en").by_key()
    for key in case.untranslatable:
        assert not entries[key].translatable
    target = write_target(case, "de")
    back = case.fmt.read(target, "de").by_key()
    if case.format == "android":  # Android: only in the default resources
        root = etree.fromstring(target.encode())
        names = {e.get("name") for e in root}
        assert {"app_name", "home_alias", "server_hosts"}.isdisjoint(names)
        assert "Tolk Mail" not in target and "mail.example.com" not in target
        assert back["sort_options[0]"].value == "@string/inbox_title"
        return
    for key in case.untranslatable:  # the others: kept as the source has them
        assert not back[key].translatable
        assert back[key].text() == entries[key].text()


def test_xliff_untranslatable_unit_is_copied_without_target() -> None:
    out = write_target(by_id("xliff12"), "de")
    assert (
        '<trans-unit id="settings.brand" translate="no">\n          <source>Tolk</source>\n'
        "        </trans-unit>" in out
    )


def test_xcstrings_keeps_other_locales_and_reads_source_keys() -> None:
    case = by_id("xcstrings")
    src = case.source()
    before = json.loads(src)
    out = write_target(case, "de")
    after = json.loads(out)
    for key in ("farewell", "greeting"):
        assert (
            after["strings"][key]["localizations"]["fr"]
            == before["strings"][key]["localizations"]["fr"]
        )
        assert list(after["strings"][key]["localizations"]) == ["de", "en", "fr"]
    assert "localizations" not in after["strings"]["Tolk"]
    assert after["strings"]["Tap to open"] == before["strings"]["Tap to open"]
    assert after["sourceLanguage"] == "en" and after["version"] == "1.0"
    # a key without a source localization reads as the key itself, in the source language only
    assert case.fmt.read(src, "en").by_key()["Compose"].value == "Compose"
    assert "Compose" not in case.fmt.read(src, "de").by_key()
    # adding pl then ja keeps Xcode's order of locales
    with_pl = write_target(case, "pl", existing=out)
    with_ja = write_target(case, "ja", existing=with_pl)
    assert list(json.loads(with_ja)["strings"]["farewell"]["localizations"]) == [
        "de",
        "en",
        "fr",
        "ja",
        "pl",
    ]
    # and the French column still reads what it read
    assert texts(case.fmt.read(with_ja, "fr")) == texts(case.fmt.read(src, "fr"))


def test_xcode_key_order() -> None:
    """Orders seen in catalogs Xcode wrote: case-insensitive, punctuation before letters in
    CLDR root order, lowercase first on ties, digits by value."""
    for ordered in (
        [
            "continue",
            "Empty",
            "Empty.Comment",
            "Key",
            "my_snake_case",
            "my.snake_case.with-multiple-separators",
            "myDeviceVariant",
            "myPlural",
        ],
        ["All phases", "All Puzzles", "Ascending", "AVERAGE PHASES", "Comment", "COMMENT"],
        ["...", "(%@)", "[DNF]", "%@", "+2", "0.00", "a"],
        ["item 2", "item 10"],
        ["de", "en", "en-GB", "fr", "ja", "pl", "pt-BR", "zh-Hans", "zh-Hant"],
        ["few", "many", "one", "other", "two", "zero"],
    ):
        assert sorted(ordered, key=xcode_sort_key) == ordered
    keys = list(json.loads(by_id("xcstrings").source())["strings"])
    assert sorted(keys, key=xcode_sort_key) == keys


def test_xcstrings_writes_xcode_json_style() -> None:
    out = write_target(by_id("xcstrings"), "de")
    assert not out.endswith("\n")
    with_newline = by_id("xcstrings").source() + "\n"  # as a hand edit leaves it: kept
    assert write_target(by_id("xcstrings"), "de", source_text=with_newline).endswith("}\n")
    assert '"Compose" : {\n\n    },' not in out  # translated now
    assert '"value" : "Hello, %@! Read https://example.com/news [de:' in out  # "/" unescaped
    assert '  "sourceLanguage" : "en",\n' in out
    assert "süß" in out  # non-ASCII as is


# --- law 6: written targets are accepted by independent readers -------------------------------


def _schema(name: str) -> Any:
    return etree.XMLSchema(etree.parse(str(DATA / name)))


@pytest.mark.parametrize("locale", TARGETS)
@pytest.mark.parametrize(
    ("case_id", "schema"),
    [
        ("xliff12", "xliff12-subset.xsd"),
        ("xliff12-files", "xliff12-subset.xsd"),
        ("xliff20", "xliff20-subset.xsd"),
    ],
)
def test_xliff_targets_validate(case_id: str, schema: str, locale: str) -> None:
    xsd = _schema(schema)
    case = by_id(case_id)
    assert xsd.validate(etree.fromstring(case.source().encode()))
    target = etree.fromstring(write_target(case, locale).encode())
    assert xsd.validate(target), xsd.error_log


def test_the_xliff_schemas_can_fail() -> None:
    target = write_target(by_id("xliff12"), "de")
    for broken in (
        target.replace('state="translated"', 'state="done"', 1),
        target.replace(' source-language="en"', "", 1),
        re.sub(r"(<source>Inbox</source>)(\s*)(<target[^>]*>[^<]*</target>)", r"\3\2\1", target),
    ):
        assert not _schema("xliff12-subset.xsd").validate(etree.fromstring(broken.encode()))
    target20 = write_target(by_id("xliff20"), "de")
    broken20 = target20.replace('state="translated"', 'state="needs-review"', 1)
    assert not _schema("xliff20-subset.xsd").validate(etree.fromstring(broken20.encode()))


def _aapt_apostrophes_ok(text: str) -> bool:
    """aapt2 refuses an apostrophe that is neither escaped nor inside double quotes."""
    quoted, i = False, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            quoted = not quoted
        elif text[i] == "'" and not quoted:
            return False
        i += 1
    return True


@pytest.mark.parametrize("locale", TARGETS)
def test_android_target_is_valid_resources(locale: str) -> None:
    root = etree.fromstring(write_target(by_id("android"), locale).encode())
    assert root.tag == "resources"
    names = []
    for element in root:
        if not isinstance(element.tag, str):
            continue
        assert element.tag in {"string", "plurals", "string-array"}
        names.append(element.get("name"))
        nodes = [element] if element.tag == "string" else list(element)
        for node in nodes:
            raw = "".join(node.itertext())
            assert _aapt_apostrophes_ok(raw), raw
            assert not raw.startswith(("@", "?")) or raw.startswith("@string/")
    assert len(names) == len(set(names))
    assert "\\'" in etree.tostring(root, encoding="unicode")  # apostrophes were escaped


def _independent_strings_reader(text: str) -> dict[str, str]:
    """A second, regex-based reader of quoted ``.strings`` entries, for the writer's output."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    quoted = r'"((?:[^"\\]|\\.)*)"'
    unquoted = r"([A-Za-z0-9_.]+)"
    pairs = {}
    for line in text.split("\n"):  # not splitlines: U+2028 and such may be inside values
        line = re.sub(r'^((?:[^"/]|"(?:[^"\\]|\\.)*")*)//.*$', r"\1", line).strip()
        if not line:
            continue
        match = re.fullmatch(rf"(?:{quoted}|{unquoted})\s*=\s*{quoted}\s*;", line)
        assert match, f"not a .strings entry: {line!r}"
        key = match.group(1) if match.group(1) is not None else match.group(2)
        pairs[_unescape_c(key)] = _unescape_c(match.group(3))
    return pairs


def _unescape_c(raw: str) -> str:
    def one(match: re.Match[str]) -> str:
        token = match.group(1)
        if token[0] in "Uu":
            return chr(int(token[1:], 16))
        return {"n": "\n", "t": "\t", "r": "\r"}.get(token, token)

    return re.sub(r"\\(U[0-9A-Fa-f]{4}|u[0-9A-Fa-f]{4}|.)", one, raw, flags=re.S)


@pytest.mark.parametrize("locale", TARGETS)
def test_strings_target_read_by_an_independent_reader(locale: str) -> None:
    case = by_id("strings")
    catalog = translated(case.fmt.read(case.source(), "en"), locale)
    assert _independent_strings_reader(write_target(case, locale, catalog)) == texts(catalog)
    assert _independent_strings_reader(case.source()) == texts(case.fmt.read(case.source(), "en"))


@pytest.mark.parametrize("locale", TARGETS)
def test_stringsdict_and_xcstrings_targets_parse(locale: str) -> None:
    data = plistlib.loads(write_target(by_id("stringsdict"), locale).encode())
    assert (
        data["Tap to open"] == plistlib.loads(by_id("stringsdict").source().encode())["Tap to open"]
    )
    catalog = json.loads(write_target(by_id("xcstrings"), locale))
    for key, item in catalog["strings"].items():
        for localization in item.get("localizations", {}).values():
            assert set(localization) <= {"stringUnit", "variations", "substitutions"}, key


# --- law 7: malformed input is a one-line FormatError -----------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n"
)
XXE = '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'

MALFORMED: list[tuple[str, str]] = [
    ("xliff", "<xliff version='1.2'"),
    ("xliff", "not xml at all"),
    (
        "xliff",
        BILLION_LAUGHS + f'<xliff xmlns="{XLIFF12}" version="1.2"><file source-language='
        '"en"><body><trans-unit id="a"><source>&lol9;</source></trans-unit></body></file></xliff>',
    ),
    (
        "xliff",
        XXE + f'<xliff xmlns="{XLIFF12}" version="1.2"><file source-language="en"><body>'
        '<trans-unit id="a"><source>&xxe;</source></trans-unit></body></file></xliff>',
    ),
    (
        "xliff",
        f'<xliff xmlns="{XLIFF12}" version="1.2"><file source-language="en"><body>'
        "<trans-unit><source>x</source></trans-unit></body></file></xliff>",
    ),
    (
        "xliff",
        f'<xliff xmlns="{XLIFF12}" version="1.2"><file source-language="en"><body>'
        '<trans-unit id="a"><source>x</source></trans-unit><trans-unit id="a"><source>y</source>'
        "</trans-unit></body></file></xliff>",
    ),
    (
        "xliff",
        f'<xliff xmlns="{XLIFF20}" version="2.0"><file id="f"><unit id="a"><segment>'
        "<source>x</source></segment></unit></file></xliff>",
    ),
    (
        "xliff",
        f'<xliff xmlns="{XLIFF20}" version="2.0" srcLang="en"><file id="f">'
        '<unit id="a"></unit></file></xliff>',
    ),
    ("xliff", '<xliff version="3.0"/>'),
    ("xliff", "<resources/>"),
    ("android", "<resources><string name='a'>x</resources>"),
    ("android", BILLION_LAUGHS + "<resources><string name='a'>&lol9;</string></resources>"),
    ("android", XXE + "<resources><string name='a'>&xxe;</string></resources>"),
    ("android", "<resources><string>no name</string></resources>"),
    ("android", "<resources><string name='a'>x</string><string name='a'>y</string></resources>"),
    (
        "android",
        "<resources><plurals name='p'><item quantity='lots'>x</item></plurals></resources>",
    ),
    ("android", "<manifest/>"),
    ("ios-strings", '"a" = "unterminated;'),
    ("ios-strings", '"a" = "b"'),
    ("ios-strings", '"a" "b";'),
    ("ios-strings", '/* never closed\n"a" = "b";'),
    ("ios-strings", '"a" = "b";\n"a" = "c";'),
    ("ios-strings", '"a" = ;'),
    ("ios-strings", '<?xml version="1.0"?><plist version="1.0"><dict><key>a</key></plist>'),
    (
        "ios-strings",
        BILLION_LAUGHS + '<plist version="1.0"><dict><key>a</key><string>&lol9;'
        "</string></dict></plist>",
    ),
    (
        "ios-strings",
        XXE + '<plist version="1.0"><dict><key>a</key><string>&xxe;</string></dict></plist>',
    ),
    ("ios-strings", '<?xml version="1.0"?><plist version="1.0"><array/></plist>'),
    (
        "ios-strings",
        '<?xml version="1.0"?><plist version="1.0"><dict><key>a</key><dict>'
        "<key>x</key><string>y</string></dict></dict></plist>",
    ),
    ("xcstrings", '{"sourceLanguage": "en", "strings": {'),
    ("xcstrings", "[]"),
    ("xcstrings", '{"strings": {}}'),
    ("xcstrings", '{"sourceLanguage": "en", "strings": []}'),
    ("xcstrings", '{"sourceLanguage": "en", "strings": {"a": 1}}'),
    ("xcstrings", '{"sourceLanguage": "en", "strings": {"a": {"localizations": {"de": 2}}}}'),
]


@pytest.mark.parametrize(("name", "text"), MALFORMED)
def test_malformed_input_is_a_one_line_format_error(name: str, text: str) -> None:
    fmt = get_format(name)
    with pytest.raises(FormatError) as raised:
        fmt.read(text, "en")
    message = str(raised.value)
    assert message and "\n" not in message
    assert "root:" not in message  # no file content, no expansion
    with pytest.raises(FormatError):  # the writer reads its source the same way
        fmt.write(
            Catalog("de"),
            locale="de",
            source_locale="en",
            source_text=text,
            existing=text if fmt.multi_locale else None,
        )


@pytest.mark.parametrize(
    ("case_id", "key", "text"),
    [
        ("xliff12", "app.greeting", "Hallo <g id='2'>neue Post"),
        ("xliff20", "app.greeting", "Hallo &nbsp; <pc id='2'>neue</pc>"),
        ("android", "greeting", "Hallo <b>neue Post"),
    ],
)
def test_translated_markup_that_is_not_well_formed(case_id: str, key: str, text: str) -> None:
    case = by_id(case_id)
    catalog = translated(case.fmt.read(case.source(), "en"), "de")
    catalog.by_key()[key].value = text
    with pytest.raises(FormatError, match=re.escape(key)) as raised:
        write_target(case, "de", catalog)
    assert "\n" not in str(raised.value)


def test_text_xml_cannot_hold_is_a_format_error() -> None:
    case = by_id("xliff12")
    catalog = translated(case.fmt.read(case.source(), "en"), "de")
    catalog.by_key()["app.title"].value = "bell \x07"
    with pytest.raises(FormatError, match=re.escape("app.title")):
        write_target(case, "de", catalog)


# --- escaping: fixtures and properties --------------------------------------------------------


def test_android_unescaping_of_the_fixture() -> None:
    entries = get_format("android").read(by_id("android").source(), "en").by_key()
    assert entries["apostrophe"].value == 'Don\'t say "never"'
    assert entries["multiline"].value == "First line\nSecond line\tafter a tab"
    assert entries["handle"].value == "@handle or ?query"
    assert entries["handle"].translatable
    assert entries["spaces"].value == "  Keep   my spaces  "
    assert entries["unicode"].value == "Café \u2013 open"
    assert entries["save_and_close"].value == "Save & close"
    assert entries["terms"].value == 'Read the <a href="https://example.com/terms">terms</a>'
    assert entries["greeting"].value == (
        'Hello, <xliff:g id="name" example="Ada">%1$s</xliff:g>! You have <b>new mail</b>.'
    )
    assert entries["unread_messages"].plurals == {
        "one": "%d unread message",
        "other": "%d unread messages",
    }


def test_android_writes_markup_cdata_and_escapes() -> None:
    out = write_target(by_id("android"), "de")
    assert '<string name="terms"><![CDATA[Read the <a href=\\"https://example.com/terms\\">' in out
    assert '<xliff:g id="name" example="Ada">%1$s</xliff:g>' in out
    assert "xmlns:xliff" not in out.split("<resources", 1)[1].split(">", 1)[1]  # not re-declared
    assert '"  Keep   my spaces   [de: l\\\'été \\"süß\\" \\\\ ✓]"' in out


def test_strings_and_xliff_fixture_texts() -> None:
    strings = get_format("ios-strings").read(by_id("strings").source(), "en").by_key()
    assert strings["draft.saved"].value == 'Saved "%@"'
    assert strings["unicode"].value == "Café \u2013 open"
    assert strings["path"].value == "C:\\Mail\\Inbox"
    assert strings["farewell"].value == "Goodbye"
    xliff = get_format("xliff").read(by_id("xliff12").source(), "en").by_key()
    assert xliff["settings.save"].value == "Save & close"  # plain text: unescaped
    assert xliff["app.quote"].value == 'Don\'t say "never" <ever>'
    assert xliff["app.greeting"].value == (
        'Hello, <x id="1" ctype="x-name"/>! You have <g id="2" ctype="bold">new mail</g>.'
    )
    xliff20 = get_format("xliff").read(by_id("xliff20").source(), "en").by_key()
    assert xliff20["app.intro[1]"].value == "Let's start & explore."


def test_stringsdict_entries() -> None:
    entries = get_format("ios-strings").read(by_id("stringsdict").source(), "en").by_key()
    assert "unread_messages" not in entries  # its format key is only a variable
    assert entries["files_in_folders"].value == "%#@files@ in %#@folders@"
    assert entries["files_in_folders#files"].plurals == {
        "zero": "No files",
        "one": "%d file",
        "other": "%d files",
    }


def test_strings_writer_keeps_unchanged_spelling_and_layout() -> None:
    case = by_id("strings")
    src = case.source()
    catalog = case.fmt.read(src, "en")
    catalog.by_key()["greeting"].value = "Hi,\t%@!"
    out = case.fmt.write(catalog, locale="en", source_locale="en", source_text=src, existing=src)
    assert out == src.replace('"Hello, %@!"', '"Hi,\\t%@!"')
    assert '"Caf\\U00E9 \\U2013 open"' in out


# text XML 1.0 can hold
XML_TEXT = st.text(
    st.characters(codec="utf-8").filter(
        lambda c: (ord(c) >= 0x20 or c in "\t\n\r") and c not in "\ufffe\uffff"
    )
)


def _plain_write_read(case: Case, key: str, text: str) -> str:
    """Write ``text`` as the ``de`` translation of ``key`` and read it back."""
    catalog = translated(case.fmt.read(case.source(), "en"), "de")
    catalog.by_key()[key].value = text
    return case.fmt.read(write_target(case, "de", catalog), "de").by_key()[key].value or ""


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8")))
def test_android_any_text_round_trips(text: str) -> None:
    """Any text, control characters and a leading @ or ? included, survives Android's
    escaping (plain and CDATA strings)."""
    assert _plain_write_read(by_id("android"), "inbox_title", text) == text
    assert _plain_write_read(by_id("android"), "terms", text) == text


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8")))
def test_strings_any_text_round_trips(text: str) -> None:
    case = by_id("strings")
    assert _plain_write_read(case, "greeting", text) == text
    catalog = translated(case.fmt.read(case.source(), "en"), "de")
    catalog.by_key()["greeting"].value = text
    assert _independent_strings_reader(write_target(case, "de", catalog))["greeting"] == text


@settings(max_examples=100, deadline=None)
@given(XML_TEXT, st.text(st.characters(codec="utf-8")))
def test_xliff_and_xcstrings_any_text_round_trips(xml_text: str, text: str) -> None:
    assert _plain_write_read(by_id("xliff12"), "app.title", xml_text) == xml_text
    assert _plain_write_read(by_id("xliff20"), "app.title", xml_text) == xml_text
    assert _plain_write_read(by_id("xcstrings"), "inbox.title", text) == text


TAGS = ["<b>", "</b>", "<i>x</i>", '<xliff:g id="n">%d</xliff:g>', "<br/>"]
XLIFF_NS_DECL = 'xmlns:xliff="urn:oasis:names:tc:xliff:document:1.2"'


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(
                st.characters(codec="utf-8").filter(
                    lambda c: c not in "<&\ufffe\uffff" and unicodedata.category(c) != "Cc"
                ),
                max_size=8,
            ),
            st.sampled_from(TAGS),
        ),
        max_size=6,
    ).filter(lambda parts: any(part in TAGS for part in parts))
)
def test_android_markup_round_trips(parts: list[str]) -> None:
    """A translation of a string with markup: its text and tags come back, in lxml's
    spelling of the fragment (tags kept, text escaped per Android rules in the file)."""
    text = "".join(parts)
    try:
        wrapper = etree.fromstring(f"<w {XLIFF_NS_DECL}>{text}</w>")
    except etree.XMLSyntaxError:
        return  # unbalanced tags: the FormatError test covers them
    serialized = etree.tostring(wrapper, encoding="unicode")
    start = serialized.index(">") + 1
    expected = "" if serialized.endswith("/>") else serialized[start : serialized.rindex("</")]
    assert _plain_write_read(by_id("android"), "greeting", text) == expected


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_writing_the_source_language_changes_only_what_differs(case: Case) -> None:
    src = case.source()
    catalog = case.fmt.read(src, "en")
    entry = next(
        e for e in catalog.entries if e.translatable and e.plurals is None and e.value != e.key
    )  # (a catalog key whose text is the key itself has no text to edit in place)
    entry.value = "Edited 'text' & more"
    out = case.fmt.write(catalog, locale="en", source_locale="en", source_text=src, existing=src)
    back = case.fmt.read(out, "en")
    assert back.by_key()[entry.key].value == entry.value
    others = {k: v for k, v in texts(back).items() if k != entry.key}
    assert others == {k: v for k, v in texts(case.fmt.read(src, "en")).items() if k != entry.key}
    changed = [(a, b) for a, b in zip(src.splitlines(), out.splitlines(), strict=False) if a != b]
    assert len(changed) == 1 and len(src.splitlines()) == len(out.splitlines())


def test_xcstrings_source_text_of_a_bare_key_gets_a_localization() -> None:
    case = by_id("xcstrings")
    src = case.source()
    catalog = case.fmt.read(src, "en")
    catalog.by_key()["Compose"].value = "Write a message"
    out = case.fmt.write(catalog, locale="en", source_locale="en", source_text=src, existing=src)
    assert json.loads(out)["strings"]["Compose"] == {
        "localizations": {"en": {"stringUnit": {"state": "translated", "value": "Write a message"}}}
    }
