"""What a push sends and how a finished job becomes a target file: the file client's rules
in one place.

- A key is stale for a target when the lock says its translation was made from another source
  hash, or the target file lacks it. Untranslatable entries and locked keys are never stale:
  they are copied from the source.
- One group per bucket file and set of stale keys (targets with the same stale keys share a
  group; a file over ``MAX_STRINGS`` is split), ``idempotencyKey`` = a hash of the request, so a
  re-run after a crash attaches to the same groups.
- A target is written from the current source file: sent keys get the job's output, other keys
  keep their current translation, keys the source lost disappear. A file whose content would
  not change keeps its bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.config import BucketFile, Config
from client.formats import Catalog, Entry, FormatError
from client.lock import Lock, entry_hash, write_atomic
from client.runs import RunGroup, RunJob
from client.text import TextFile, decode
from localization.icu_plurals import icu_plural, spread_plural_forms
from localization.locked import LockedKeys

# Strings per group: well under the server's default limit of 20,000 per request.
MAX_STRINGS = 5_000
PLURAL_ARGUMENT = "count"


class FileProblem(Exception):
    """A file of the project that cannot be read or written (one line; exit code 2)."""


def read_text(path: Path) -> TextFile | None:
    """A project file's text (``client.text``), or None when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise FileProblem(f"{path}: cannot be read ({err.strerror})") from None
    try:
        return decode(data)
    except UnicodeDecodeError as err:
        raise FileProblem(f"{path}: not valid {err.encoding.upper()} text") from None


@dataclass
class SourceFile:
    """A bucket file's source as read now."""

    file: BucketFile
    text: TextFile
    catalog: Catalog
    locked: set[str]
    hashes: dict[str, str]  # key -> entry_hash for every translatable entry

    def to_translate(self) -> list[Entry]:
        """The entries a target needs translated: translatable and not locked."""
        return [e for e in self.catalog.entries if e.translatable and e.key not in self.locked]


def read_source(config: Config, bucket_file: BucketFile) -> SourceFile:
    path = config.root / bucket_file.source
    text = read_text(path)
    if text is None:
        raise FileProblem(f"{bucket_file.source}: source file not found")
    fmt = bucket_file.bucket.format
    try:
        catalog = fmt.read_source(text.text, config.source)
    except FormatError as err:
        raise FileProblem(f"{bucket_file.source}: {err}") from None
    matcher = LockedKeys(list(bucket_file.bucket.locked_keys))
    locked = (
        {e.key for e in catalog.entries if matcher.is_locked(tuple(e.key.split(".")))}
        if matcher
        else set()
    )
    hashes = {e.key: entry_hash(e, e.key in locked) for e in catalog.entries if e.translatable}
    return SourceFile(bucket_file, text, catalog, locked, hashes)


def read_target(config: Config, source: SourceFile, locale: str) -> tuple[TextFile | None, Catalog]:
    rel = source.file.targets[locale]
    text = read_text(config.root / rel)
    if text is None:
        return None, Catalog(locale)
    try:
        return text, source.file.bucket.format.read(text.text, locale)
    except FormatError as err:
        raise FileProblem(f"{rel}: {err}") from None


def _complete(entry: Entry | None, forms: tuple[str, ...]) -> bool:
    """Whether a target entry has what its file needs (every plural form it holds)."""
    if entry is None:
        return False
    if entry.plurals is None:
        return entry.value is not None
    return all(c in entry.plurals for c in forms)


def stale_keys(
    source: SourceFile,
    target: Catalog,
    locale: str,
    lock: Lock,
    in_flight: Mapping[tuple[str, str, str], str] | None = None,
) -> list[str]:
    """The keys of ``source`` that ``locale`` needs translated, in source order. A key that
    an unfinished run is translating from the current source is not stale: it is on its way."""
    have = target.by_key()
    forms = source.file.bucket.format.plural_forms(locale)
    flying = in_flight or {}
    out = []
    for entry in source.to_translate():
        current = source.hashes[entry.key]
        if flying.get((source.file.source, entry.key, locale)) == current:
            continue
        translated = lock.translated_from(source.file.source, entry.key, locale)
        if translated != current or not _complete(have.get(entry.key), forms):
            out.append(entry.key)
    return out


def wire_text(entry: Entry) -> str:
    """An entry's text as sent: plural forms travel as one ICU plural message, whose branches
    the server fits to each target language."""
    if entry.plurals is not None:
        forms = dict(entry.plurals)
        if "other" not in forms and forms:  # ICU needs one; the last form is the general one
            forms["other"] = forms[list(forms)[-1]]
        return icu_plural(forms, PLURAL_ARGUMENT)
    return entry.value or ""


def hints_for(entry: Entry) -> list[str]:
    """What the file tells a translator about an entry, as breadcrumbs for the model."""
    out = []
    if entry.comment:
        out.append(entry.comment[:1_000])
    if entry.context:
        out.append(f"context: {entry.context}"[:1_000])
    return out


@dataclass
class Request:
    """One group to create: its body and what the run needs to know about it."""

    source: SourceFile
    locales: list[str]
    keys: list[str]
    body: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0

    def __post_init__(self) -> None:
        self.body["idempotencyKey"] = self._key()

    def _key(self) -> str:
        """A hash of the request, of the file it is for (two files with the same strings are
        two groups) and of the attempt: the same push makes the same keys, so a re-run after
        a crash finds the groups it created."""
        unkeyed = {k: v for k, v in self.body.items() if k != "idempotencyKey"}
        identity = {
            "file": [self.source.file.bucket.index, self.source.file.source],
            "body": unkeyed,
            "attempt": self.attempt,
        }
        digest = hashlib.sha256(
            json.dumps(identity, ensure_ascii=False, sort_keys=True).encode()
        ).hexdigest()
        return f"tolk-{digest[:48]}"

    def next_attempt(self) -> Request:
        """The same request asked anew (the group its key names ended without success)."""
        return Request(self.source, self.locales, self.keys, dict(self.body), self.attempt + 1)


def requests_for(config: Config, source: SourceFile, stale: dict[str, list[str]]) -> list[Request]:
    """The groups to create for one bucket file, given each target's stale keys."""
    by_keys: dict[tuple[str, ...], list[str]] = {}
    for locale, keys in stale.items():
        if keys:
            by_keys.setdefault(tuple(keys), []).append(locale)
    entries = source.catalog.by_key()
    out = []
    for key_set, locales in by_keys.items():
        for start in range(0, len(key_set), MAX_STRINGS):
            chunk = list(key_set[start : start + MAX_STRINGS])
            data = {key: wire_text(entries[key]) for key in chunk}
            hints = {key: h for key in chunk if (h := hints_for(entries[key]))}
            body: dict[str, Any] = {
                "sourceLocale": config.source,
                "targetLocales": sorted(locales),
                "data": data,
            }
            if hints:
                body["hints"] = hints
            if config.context:
                body["context"] = config.context
            if config.engine:
                body["engineId"] = config.engine
            out.append(Request(source, sorted(locales), chunk, body))
    return out


def run_group(request: Request, created: dict[str, Any]) -> RunGroup:
    """How a run remembers a created group."""
    jobs = [
        RunJob(j["id"], j["targetLocale"], request.source.file.targets[j["targetLocale"]])
        for j in created["jobs"]
    ]
    entries = request.source.catalog.by_key()
    return RunGroup(
        group_id=created["groupId"],
        bucket=request.source.file.bucket.index,
        source=request.source.file.source,
        sent={key: request.source.hashes[key] for key in request.keys},
        plural_keys=[k for k in request.keys if entries[k].plurals is not None],
        jobs=jobs,
        idempotency_key=request.body["idempotencyKey"],
    )


def _content(catalog: Catalog) -> list[tuple[str, Any, bool]]:
    """What a file says, whatever its layout: every entry's key, text and kind."""
    return [(e.key, e.text(), e.translatable) for e in catalog.entries]


def _plainly_same(source: SourceFile, existing: Catalog, desired: Catalog) -> bool:
    """Whether a target already says what it would be written with, seen without rendering
    it: the same translatable entries, and the untranslatable ones just as the source has
    them. (Anything else, a platform that keeps those in the source only included, is
    rendered to tell.)"""
    if _content(existing.translatable()) != _content(desired):
        return False

    def untranslatable(catalog: Catalog) -> list[tuple[str, Any, bool]]:
        return [(e.key, e.text(), False) for e in catalog.entries if not e.translatable]

    return untranslatable(existing) == untranslatable(source.catalog)


@dataclass
class Written:
    path: str
    changed: bool
    keys: list[str]  # keys of the output that landed in the file
    problems: list[str]  # keys whose output could not be used


def write_target(
    config: Config,
    lock: Lock,
    source: SourceFile,
    locale: str,
    output: dict[str, Any] | None = None,
    sent: dict[str, str] | None = None,
    plural_keys: frozenset[str] = frozenset(),
    *,
    dry_run: bool = False,
    as_read: tuple[TextFile | None, Catalog] | None = None,
) -> Written:
    """Write ``locale``'s file of a bucket file from the current source, the job's ``output``
    (key -> translated text) and the current translations; update the lock. With
    ``dry_run``, only tell whether the file would change; ``as_read`` is the target as
    already read, if it was.

    An output made from an older source than the current one does not replace a translation
    the lock knows is current (a late run landing after a newer one)."""
    output, sent = output or {}, sent or {}
    fmt = source.file.bucket.format
    rel = source.file.targets[locale]
    existing_text, existing = as_read or read_target(config, source, locale)
    have = existing.by_key()
    entries, landed, problems = [], [], []
    for entry in source.catalog.entries:
        if not entry.translatable:
            continue
        new = Entry(entry.key, comment=entry.comment, context=entry.context, meta=dict(entry.meta))
        current = source.hashes[entry.key]
        outdone = (
            sent.get(entry.key) != current
            and entry.key in have
            and lock.translated_from(source.file.source, entry.key, locale) == current
        )
        if entry.key in source.locked:
            new.value, new.plurals = entry.value, entry.plurals
        elif entry.key in sent and isinstance(output.get(entry.key), str) and not outdone:
            text = output[entry.key]
            if entry.key in plural_keys:
                parsed = spread_plural_forms(text)
                if parsed is None:
                    problems.append(entry.key)
                    if entry.key in have:
                        entries.append(have[entry.key])
                    continue
                new.plurals = parsed[1]
            else:
                new.value = text
            landed.append(entry.key)
        elif entry.key in have:
            kept = have[entry.key]
            new.value, new.plurals = kept.value, kept.plurals
        else:
            continue
        entries.append(new)
    catalog = Catalog(locale, entries, dict(existing.meta))
    if dry_run and existing_text is not None and _plainly_same(source, existing, catalog):
        return Written(rel, False, landed, problems)  # the common case, without a render
    try:
        text = fmt.write(
            catalog,
            locale=locale,
            source_locale=config.source,
            source_text=source.text.text,
            existing=existing_text.text if existing_text else None,
        )
        # Changed, unless only the layout differs (the file keeps its bytes then).
        changed = existing_text is None or (
            text != existing_text.text
            and (
                _content(existing.translatable()) != _content(catalog)
                or _content(fmt.read(text, locale)) != _content(existing)
            )
        )
    except FormatError as err:
        raise FileProblem(f"{rel}: {err}") from None
    if dry_run:
        return Written(rel, changed, landed, problems)
    if changed:
        like = existing_text or source.text
        write_atomic(config.root / rel, like.encode(text))
    for key, current in source.hashes.items():
        lock.record(source.file.source, key, current, locale if key in source.locked else None)
    for key in landed:
        lock.record_translation(source.file.source, key, locale, sent[key])
    lock.keep_only(source.file.source, set(source.hashes))
    return Written(rel, changed, landed, problems)
