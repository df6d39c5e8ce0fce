"""Spreadsheet-style CSV: one file, one row per key, one column per locale.

The header row names the columns: a key column (``key`` or ``id``, any case), one column per
locale (``en``, ``pt-BR``; ``pt_BR`` matches too), and optionally ``comment``, ``description``,
``note`` or ``notes`` (-> ``Entry.comment``) and ``context`` (-> ``Entry.context``); other columns
are carried along untouched. Keys: the key column's cells (rows with an empty key are skipped, a
key given twice is refused). ``read(text, locale)`` gives that locale's column: a row whose cell
is empty is a text the locale lacks, and a file without the column is an empty catalog.

``write`` merges one locale's column into the existing file (the source file when there is
none yet): every other column and row stays as it is, byte for byte where its cells do not
change; a missing column is added at the end of the header; keys the catalog has and the file
lacks get new rows at the end. The file's dialect is kept: its delimiter (``,`` ``;`` tab or
``|``, found from the header), quoting (all fields quoted or only where needed), line endings,
final newline and UTF-8 BOM.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from client.formats.model import Catalog, Entry, FileFormat, FormatError

BOM = "\ufeff"
KEY_COLUMNS = ("key", "id")
COMMENT_COLUMNS = ("comment", "description", "note", "notes")
CONTEXT_COLUMNS = ("context",)
DELIMITERS = (",", ";", "\t", "|")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@dataclass
class Record:
    cells: list[str]
    raw: str  # the record's text, terminator included


@dataclass
class Table:
    records: list[Record]  # header first; blank lines are records without cells
    delimiter: str
    quote_all: bool
    newline: str
    bom: bool

    @property
    def header(self) -> list[str]:
        return self.records[0].cells

    def column(self, names: tuple[str, ...]) -> int | None:
        for index, name in enumerate(self.header):
            if _norm(name) in names:
                return index
        return None

    def locale_column(self, locale: str) -> int | None:
        return self.column((_norm(locale),))

    def key_column(self) -> int:
        index = self.column(KEY_COLUMNS)
        if index is None:
            raise FormatError("the CSV header has no key column (named 'key' or 'id')")
        return index

    def keyed(self) -> list[tuple[str, Record]]:
        """The rows that have a key, with it; ``FormatError`` if a key is given twice."""
        key_col = self.key_column()
        out: list[tuple[str, Record]] = []
        seen: set[str] = set()
        for record in self.records[1:]:
            key = record.cells[key_col] if key_col < len(record.cells) else ""
            if not key:
                continue
            if key in seen:
                raise FormatError(f"key {key!r} is given twice in the CSV file")
            seen.add(key)
            out.append((key, record))
        return out

    def encode(self, cells: list[str], end: str) -> str:
        out = io.StringIO()
        if self.quote_all:
            writer = csv.writer(out, delimiter=self.delimiter, quoting=csv.QUOTE_ALL)
        else:
            writer = csv.writer(out, delimiter=self.delimiter, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(cells)
        return out.getvalue().removesuffix("\r\n") + end


def _records(text: str, delimiter: str) -> list[Record]:
    lines = list(io.StringIO(text, newline=""))
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    records = []
    consumed = 0
    for cells in reader:
        raw = "".join(lines[consumed : reader.line_num])
        consumed = reader.line_num
        records.append(Record(cells, raw))
    return records


def parse(text: str) -> Table:
    bom = text.startswith(BOM)
    body = text.removeprefix(BOM)
    if not body.strip():
        raise FormatError("the CSV file is empty: it needs a header row")
    first = body.splitlines()[0]
    best: tuple[int, str] | None = None
    for delimiter in DELIMITERS:
        try:
            header = next(csv.reader([first], delimiter=delimiter))
        except csv.Error:
            continue
        if any(_norm(name) in KEY_COLUMNS for name in header):
            if best is None or len(header) > best[0]:
                best = (len(header), delimiter)
    if best is None:
        raise FormatError("the CSV header has no key column (named 'key' or 'id')")
    delimiter = best[1]
    try:
        records = _records(body, delimiter)
    except csv.Error as exc:
        raise FormatError(f"invalid CSV: {exc}") from None
    head = records[0]
    newline = "\r\n" if head.raw.endswith("\r\n") else "\n"
    table = Table(records, delimiter, False, newline, bom)
    # quoting as the first data row (or else the header) is written: everything or as needed
    sample = next((r for r in records[1:] if r.cells), head)
    quoted = Table(records, delimiter, True, newline, bom)
    table.quote_all = quoted.encode(sample.cells, "") == sample.raw.rstrip("\r\n")
    return table


class CsvFormat(FileFormat):
    name = "csv"
    multi_locale = True

    def read(self, text: str, locale: str) -> Catalog:
        table = parse(text)
        rows = table.keyed()
        catalog = Catalog(locale)
        column = table.locale_column(locale)
        if column is None:
            return catalog
        comment_col = table.column(COMMENT_COLUMNS)
        context_col = table.column(CONTEXT_COLUMNS)

        def cell(cells: list[str], index: int | None) -> str:
            return cells[index] if index is not None and index < len(cells) else ""

        for key, record in rows:
            value = cell(record.cells, column)
            if value:
                catalog.entries.append(
                    Entry(
                        key,
                        value=value,
                        comment=cell(record.cells, comment_col) or None,
                        context=cell(record.cells, context_col) or None,
                    )
                )
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
        table = parse(existing if existing and existing.strip() else source_text)
        table.keyed()  # refuses what a reader refuses
        key_col = table.key_column()
        column = table.locale_column(locale)
        header = table.records[0]
        out: list[str] = []
        if column is None:
            column = len(header.cells)
            out.append(self._append(table, header, locale))
        else:
            out.append(header.raw)
        width = len(header.cells) if column < len(header.cells) else column + 1
        texts = {e.key: e.single() for e in catalog.entries if e.translatable}
        present: set[str] = set()
        for record in table.records[1:]:
            key = record.cells[key_col] if key_col < len(record.cells) else ""
            if not record.cells or not key:
                out.append(record.raw)
                continue
            present.add(key)
            text = texts.get(key, "")
            old = record.cells[column] if column < len(record.cells) else ""
            if text == old:
                out.append(record.raw)
            elif column == len(record.cells):
                out.append(self._append(table, record, text))
            else:
                cells = record.cells + [""] * (width - len(record.cells))
                cells[column] = text
                end = record.raw[len(record.raw.rstrip("\r\n")) :]
                out.append(table.encode(cells, end))
        for key, text in texts.items():
            if key not in present and text:
                if out and not out[-1].endswith(("\n", "\r")):
                    out[-1] += table.newline
                cells = [""] * width
                cells[key_col], cells[column] = key, text
                out.append(table.encode(cells, table.newline))
        return (BOM if table.bom else "") + "".join(out)

    @staticmethod
    def _append(table: Table, record: Record, cell: str) -> str:
        """``record`` with one more cell at its end, its other cells as they are written."""
        body = record.raw.rstrip("\r\n")
        end = record.raw[len(body) :]
        encoded = "" if cell == "" and not table.quote_all else table.encode([cell], "")
        return body + table.delimiter + encoded + end


FORMAT = CsvFormat()
