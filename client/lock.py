"""``tolk.lock``: what each target was translated from, so a push sends only what changed.

Per bucket source file, per key: the hash of the source entry (its text or plural forms, its
comment and context, whether it is locked) and, per target locale, the hash the target's
translation was made from. The lock never holds translations. It is JSON with sorted keys, so
that a commit of it shows exactly what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.formats import Entry

VERSION = 1


def entry_hash(entry: Entry, locked: bool) -> str:
    """What decides whether a translation is stale: the text, hints, context, locked state."""
    canonical = json.dumps(
        [entry.text(), entry.comment, entry.context, locked],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Lock:
    path: Path
    # source file -> key -> {"source": hash, "targets": {locale: hash}}
    files: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    saved: str | None = None  # the file's text as read or last written

    @classmethod
    def load(cls, path: Path) -> Lock:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (ValueError, UnicodeDecodeError):
            raise LockError(
                f"{path.name}: not valid JSON; delete it to translate all again"
            ) from None
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            raise LockError(f"{path.name}: unknown lock version; delete it to translate all again")
        files = raw.get("files")
        if not isinstance(files, dict):
            raise LockError(f"{path.name}: 'files' must be a mapping")
        lock = cls(path, files)
        lock.saved = lock.render()
        return lock

    def translated_from(self, source_file: str, key: str, locale: str) -> str | None:
        return self.files.get(source_file, {}).get(key, {}).get("targets", {}).get(locale)

    def record(self, source_file: str, key: str, source_hash: str, locale: str | None) -> None:
        """Note the current source hash of a key, and that ``locale`` is translated from it."""
        slot = self.files.setdefault(source_file, {}).setdefault(key, {"targets": {}})
        slot["source"] = source_hash
        if locale is not None:
            slot.setdefault("targets", {})[locale] = source_hash

    def record_translation(self, source_file: str, key: str, locale: str, sent: str) -> None:
        """``locale`` of ``key`` now holds a translation of the source whose hash is ``sent``."""
        slot = self.files.setdefault(source_file, {}).setdefault(key, {"targets": {}})
        slot.setdefault("source", sent)
        slot.setdefault("targets", {})[locale] = sent

    def keep_only(self, source_file: str, keys: set[str]) -> None:
        """Forget keys the source no longer has."""
        entries = self.files.get(source_file)
        if entries is None:
            return
        for key in [k for k in entries if k not in keys]:
            del entries[key]

    def render(self) -> str:
        files = {name: keys for name, keys in self.files.items() if keys}
        text = json.dumps(
            {"version": VERSION, "files": files}, ensure_ascii=False, sort_keys=True, indent=2
        )
        return text + "\n"

    def save_if_changed(self) -> None:
        """Write the lock if its content changed (an unchanged project keeps every byte)."""
        text = self.render()
        if text != self.saved:
            write_atomic(self.path, text.encode())
            self.saved = text


class LockError(Exception):
    """A lock file that cannot be used (exit code 2)."""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a crash leaves the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
