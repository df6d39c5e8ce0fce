"""``tolk.lock``: what each target was translated from, so a push sends only what changed.

Per bucket source file, per key: the hash of the source entry (its text or plural forms, its
comment and context, whether it is locked) and, per target locale, the hash the target's
translation was made from. The lock never holds translations. It is JSON with sorted keys, so
that a commit of it shows exactly what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows: one tolk at a time there
    fcntl = None  # type: ignore[assignment]

from client.formats import Entry

VERSION = 1
STATE_DIR = ".tolk"


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
            text = path.read_text(encoding="utf-8")
            raw = json.loads(text)
        except FileNotFoundError:
            return cls(path)
        except OSError as err:
            raise LockError(f"{path.name}: cannot be read ({err.strerror})") from None
        except (ValueError, UnicodeDecodeError):
            raise LockError(
                f"{path.name}: not valid JSON; delete it to translate all again"
            ) from None
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            raise LockError(f"{path.name}: unknown lock version; delete it to translate all again")
        files: Any = raw.get("files")
        if not _well_formed(files):
            raise LockError(
                f"{path.name}: not a lock file's shape; delete it to translate all again"
            )
        lock = cls(path, files)
        lock.saved = text  # as read: written again only when it would read differently
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


def _well_formed(files: Any) -> bool:
    """files -> key -> {"source": str, "targets": {locale: str}}."""
    if not isinstance(files, dict):
        return False
    for keys in files.values():
        if not isinstance(keys, dict):
            return False
        for slot in keys.values():
            if not isinstance(slot, dict) or not isinstance(slot.get("source", ""), str):
                return False
            targets = slot.get("targets", {})
            if not isinstance(targets, dict) or not all(
                isinstance(v, str) for v in targets.values()
            ):
                return False
    return True


@contextmanager
def updating(path: Path) -> Iterator[Lock]:
    """The lock as it is on disk now, held against other ``tolk`` processes of the project
    until the block ends, then saved if it changed: two commands at once lose nothing."""
    with project_lock(path.parent):
        lock = Lock.load(path)
        yield lock
        lock.save_if_changed()


@contextmanager
def project_lock(root: Path) -> Iterator[None]:
    """An advisory lock on the project's files (``.tolk/lock``), for one change at a time."""
    folder = root / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a crash leaves the old file or the new. A
    symbolic link is followed, and the file keeps its permissions."""
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
