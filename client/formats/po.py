"""GNU gettext PO files, read and written with polib.

The source is a template (``messages.pot``) or the source locale's ``.po``; its ``msgid`` is the
source text. Keys follow gettext's own convention: ``msgctxt + "\\x04" + msgid`` for an entry
with a context, else the ``msgid``. ``Entry.context`` is the ``msgctxt``; ``Entry.comment`` the
extracted comments (``#.``, what the developer tells the translator); translator comments
(``#``), references (``#:``) and flags (``#,``) are the file's own and stay in ``meta``.

Texts: an entry's ``msgstr``; an entry whose ``msgstr`` is empty reads as its ``msgid``, which
is what gettext shows for it (``meta["untranslated"]``), and a fuzzy one keeps its ``msgstr``
(``meta["fuzzy"]``). Plural forms: ``msgstr[n]`` holds the CLDR category
``gettext_plurals(locale).categories[n]``; an untranslated plural entry has ``msgid`` as the
category of 1 and ``msgid_plural`` as ``other``. Obsolete entries (``#~``) are not read.

A target (``locale`` other than the source's) is the source's entries in source order, minus
those the catalog lacks, each with the source's references, extracted comments and flags (so
``msgfmt --check-format`` checks its ``c-format``/``python-format`` directives), without
``fuzzy`` and previous ``msgid``s once translated, with the translator comments of the existing
target; a plural entry gets exactly ``nplurals`` ``msgstr[n]``. An entry the catalog gives the
same text the existing file reads keeps its state there (untranslated, or fuzzy). The header is
the existing target's (else the source's) with ``Language`` (gettext's spelling, ``pt_BR``),
``Plural-Forms`` (gettext's for the language, from ``localization.plurals``) and
``Content-Type: text/plain; charset=UTF-8`` (``MIME-Version`` and ``Content-Transfer-Encoding``
added if missing), and not fuzzy; obsolete entries are dropped. Writing the source locale keeps
the source's header and obsolete entries. A header or entry whose content does not change
keeps its text byte for byte; anything else is written as polib writes it (header lines are
not wrapped). An existing file that is not valid PO is ignored: it is being replaced.
"""

from __future__ import annotations

import re
from typing import Any

import polib

from client.formats.model import Catalog, Entry, FileFormat, FormatError
from localization.plurals import gettext_plurals, plural_category

CONTENT_TYPE = "text/plain; charset=UTF-8"
Identity = tuple[bool, str | None, str]


class _POFile(polib.POFile):
    """A PO file whose header fields keep the order they were read or set in."""

    def ordered_metadata(self) -> list[tuple[str, str]]:
        return list(self.metadata.items())


# a keyword or continuation line: its string must be closed (polib would cut it short)
STRING_LINE = re.compile(r'((msgctxt|msgid|msgid_plural|msgstr(\[\d+\])?)\s*)?"([^"\\]|\\.)*"')
MARKED = re.compile(r"#(~\|?|\|)\s*")


def _check_strings(text: str, what: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        body = line.strip()
        if body.startswith("#"):
            marked = MARKED.match(body)
            if marked is None:
                continue
            body = body[marked.end() :]
        if body.startswith(("msg", '"')) and not STRING_LINE.fullmatch(body.rstrip()):
            raise FormatError(f"invalid {what}: malformed string on line {number}")


def _load(text: str, what: str = "PO") -> _POFile:
    _check_strings(text, what)
    if "\n" not in text:
        text += "\n"  # polib takes a one-line text for the name of a file
    try:
        po = polib.pofile(text, klass=_POFile)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormatError(f"invalid {what}: {message}") from None
    assert isinstance(po, _POFile)
    seen: set[str] = set()
    for entry in po:
        if not entry.obsolete:
            if _key(entry) in seen:
                raise FormatError(f"invalid {what}: message {entry.msgid!r} is defined twice")
            seen.add(_key(entry))
    return po


def _key(entry: polib.POEntry) -> str:
    if entry.msgctxt is not None:
        return f"{entry.msgctxt}\x04{entry.msgid}"
    return str(entry.msgid)


def _identity(entry: polib.POEntry) -> Identity:
    return (bool(entry.obsolete), entry.msgctxt, entry.msgid)


def _untranslated(entry: polib.POEntry) -> bool:
    if entry.msgid_plural:
        return not any(entry.msgstr_plural.values())
    return not entry.msgstr


def _read_entry(entry: polib.POEntry, locale: str, *, as_source: bool = False) -> Entry:
    """The model of one PO entry in ``locale``'s file; ``as_source``: its ``msgid`` (and
    ``msgid_plural``) whatever its ``msgstr`` says, as gettext's source texts are."""
    meta: dict[str, Any] = {
        "occurrences": list(entry.occurrences),
        "flags": list(entry.flags),
        "tcomment": entry.tcomment or "",
    }
    out = Entry(_key(entry), comment=entry.comment or None, context=entry.msgctxt, meta=meta)
    untranslated = as_source or _untranslated(entry)
    if untranslated:
        meta["untranslated"] = True
    if "fuzzy" in entry.flags:
        meta["fuzzy"] = True
    if entry.msgid_plural:
        if untranslated:
            out.plurals = {plural_category(locale, 1): entry.msgid}
            out.plurals["other"] = entry.msgid_plural
        else:
            categories = gettext_plurals(locale).categories
            out.plurals = {
                categories[n]: text
                for n, text in sorted(entry.msgstr_plural.items())
                if 0 <= n < len(categories)
            }
    else:
        out.value = entry.msgid if untranslated else entry.msgstr
    return out


def _render_header(po: _POFile) -> str:
    """The header block as polib writes it (its comment lines, then the ``msgid ""`` entry),
    without the lone ``#`` polib gives a file that has no header comment."""
    comments = ""
    if po.header:
        for line in po.header.split("\n"):
            if not line:
                comments += "#\n"
            elif line[:1] in (",", ":"):
                comments += f"#{line}\n"
            else:
                comments += f"# {line}\n"
    return comments + po.metadata_as_entry().__unicode__(po.wrapwidth)


def _blocks(text: str) -> tuple[tuple[str, str] | None, dict[Identity, tuple[str, str]]]:
    """The header and each entry as the file spells them, with how polib would write them:
    the blocks of lines between blank lines that hold a header or one entry."""
    header: tuple[str, str] | None = None
    entries: dict[Identity, tuple[str, str]] = {}
    for block in re.split(r"\n(?:[ \t]*\n)+", text.strip("\n")):
        raw = block + "\n"
        try:
            po = polib.pofile(raw, klass=_POFile)
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
        assert isinstance(po, _POFile)
        items = [*po, *po.obsolete_entries()]
        if not items and 'msgid ""' in block:
            header = (raw, _render_header(po))
        elif len(items) == 1 and not po.metadata and not po.header:
            entries[_identity(items[0])] = (raw, items[0].__unicode__(po.wrapwidth))
    return header, entries


class PoFormat(FileFormat):
    name = "po"

    def path_locale(self, locale: str) -> str:
        return locale.replace("-", "_")

    def plural_forms(self, locale: str) -> tuple[str, ...]:
        """The categories behind ``msgstr[0..nplurals-1]`` (Polish ``one few many``)."""
        return gettext_plurals(locale).categories

    def read(self, text: str, locale: str) -> Catalog:
        return self._read(text, locale, as_source=False)

    def read_source(self, text: str, locale: str) -> Catalog:
        """The source texts are the ``msgid``s, even in a source ``.po`` whose ``msgstr``s
        are filled."""
        return self._read(text, locale, as_source=True)

    @staticmethod
    def _read(text: str, locale: str, *, as_source: bool) -> Catalog:
        po = _load(text)
        catalog = Catalog(locale, meta={"header": dict(po.metadata)})
        catalog.entries = [
            _read_entry(e, locale, as_source=as_source) for e in po if not e.obsolete
        ]
        return catalog

    def write(
        self,
        catalog: Catalog,
        *,
        locale: str,
        source_locale: str,
        source_text: str,
        existing: str | None,
    ) -> str:
        source = _load(source_text, "PO source")
        old: _POFile | None = None
        if existing and existing.strip():
            try:
                old = _load(existing)
            except FormatError:
                old = None
        base_text = existing if old is not None and existing else source_text
        raw_header, raw_entries = _blocks(base_text.replace("\r\n", "\n"))
        base = old if old is not None else source
        old_entries = {_identity(e): e for e in old} if old is not None else {}
        entries = {e.key: e for e in catalog.entries if e.translatable}
        is_source = locale == source_locale

        out = _POFile(wrapwidth=78)
        out.header = base.header
        out.metadata = dict(base.metadata)
        out.metadata_is_fuzzy = base.metadata_is_fuzzy
        if not is_source:
            out.metadata["Language"] = self.path_locale(locale)
            out.metadata["Plural-Forms"] = gettext_plurals(locale).header
            out.metadata["Content-Type"] = CONTENT_TYPE
            out.metadata.setdefault("MIME-Version", "1.0")
            out.metadata.setdefault("Content-Transfer-Encoding", "8bit")
            out.metadata_is_fuzzy = 0
        for entry in source:
            if entry.obsolete:
                continue
            wanted = entries.get(_key(entry))
            if wanted is not None:
                previous = old_entries.get(_identity(entry))
                out.append(self._entry(entry, wanted, previous, locale, is_source))
        if is_source:
            out.extend(e for e in base if e.obsolete)

        blocks: list[str] = []
        if out.metadata or not is_source or raw_header is not None:
            rendered = _render_header(out)
            if raw_header is not None and raw_header[1] == rendered:
                rendered = raw_header[0]
            blocks.append(rendered)
        for item in out:
            rendered = item.__unicode__(out.wrapwidth)
            raw = raw_entries.get(_identity(item))
            blocks.append(raw[0] if raw is not None and raw[1] == rendered else rendered)
        text = "\n".join(blocks)
        return text.replace("\n", "\r\n") if "\r\n" in base_text else text

    @staticmethod
    def _entry(
        source: polib.POEntry,
        wanted: Entry,
        previous: polib.POEntry | None,
        locale: str,
        is_source: bool,
    ) -> polib.POEntry:
        """The target's entry for ``source`` holding ``wanted``'s text (``previous`` is the
        existing file's entry, whose state it keeps if the text stays the same)."""
        flags = [flag for flag in source.flags if flag != "fuzzy"]
        tcomment = previous.tcomment if previous is not None else ""
        if is_source and previous is None:
            tcomment = source.tcomment
        entry = polib.POEntry(
            msgid=source.msgid,
            msgctxt=source.msgctxt,
            msgid_plural=source.msgid_plural,
            occurrences=list(source.occurrences),
            comment=source.comment,
            tcomment=tcomment,
            flags=flags,
        )
        nplurals = gettext_plurals(locale).nplurals
        if previous is not None and _read_entry(previous, locale).text() == wanted.text():
            entry.msgstr = previous.msgstr
            entry.msgstr_plural = dict(previous.msgstr_plural)
            if source.msgid_plural and not is_source:
                entry.msgstr_plural = {
                    n: previous.msgstr_plural.get(n, "") for n in range(nplurals)
                }
            if "fuzzy" in previous.flags:
                entry.flags = ["fuzzy", *flags]
                entry.previous_msgctxt = previous.previous_msgctxt
                entry.previous_msgid = previous.previous_msgid
                entry.previous_msgid_plural = previous.previous_msgid_plural
            return entry
        if source.msgid_plural:
            categories = gettext_plurals(locale).categories
            forms = wanted.forms(categories)
            entry.msgstr_plural = {n: forms[cat] for n, cat in enumerate(categories)}
        else:
            entry.msgstr = wanted.single()
        return entry


FORMAT = PoFormat()
