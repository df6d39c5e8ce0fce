"""``tolk init``: find a project's locale files and write ``tolk.yaml`` for them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from client.config import DEFAULT_API
from client.formats import get_format

# Where platforms keep their source strings: (format, path pattern with [locale]). The first
# pattern that matches an existing file for the source locale becomes a bucket.
KNOWN_LAYOUTS = (
    ("json", "locales/[locale].json"),
    ("json", "src/locales/[locale].json"),
    ("json", "i18n/[locale].json"),
    ("json", "public/locales/[locale]/*.json"),
    ("json", "messages/[locale].json"),
    ("yaml", "config/locales/[locale].yml"),
    ("yaml", "locales/[locale].yml"),
    ("yaml", "locales/[locale].yaml"),
    ("po", "po/[locale].po"),
    ("po", "locale/[locale]/LC_MESSAGES/*.po"),
    ("arb", "lib/l10n/app_[locale].arb"),
    ("android", "app/src/main/res/values-[locale]/strings.xml"),
    ("android", "res/values-[locale]/strings.xml"),
    ("ios-strings", "[locale].lproj/Localizable.strings"),
    ("ios-strings", "[locale].lproj/Localizable.stringsdict"),
    ("properties", "src/main/resources/messages_[locale].properties"),
    ("xliff", "xliff/[locale].xlf"),
    ("xliff", "locales/[locale].xlf"),
)
ANDROID_SOURCES = ("app/src/main/res/values/strings.xml", "res/values/strings.xml")
GETTEXT_TEMPLATES = ("po/messages.pot",)
SKIP = {".git", "node_modules", ".venv", "venv", "build", "dist", ".tolk", "Pods"}


def detect(root: Path, source: str) -> list[dict[str, Any]]:
    """Buckets for the locale files found under ``root``."""
    buckets: list[dict[str, Any]] = []
    for fmt_name, pattern in KNOWN_LAYOUTS:
        spelled = get_format(fmt_name).path_locale(source)
        glob = pattern.replace("[locale]", spelled)
        if fmt_name == "android":
            source_path = next((p for p in ANDROID_SOURCES if p.startswith(pattern[:3])), None)
            if source_path and (root / source_path).is_file():
                buckets.append({"format": fmt_name, "path": pattern, "sourcePath": source_path})
            continue
        if any(root.glob(glob)):
            buckets.append({"format": fmt_name, "path": pattern})
        elif fmt_name == "po":
            for template in GETTEXT_TEMPLATES:
                if (root / template).is_file() and pattern.startswith("po/"):
                    buckets.append({"format": "po", "path": pattern, "sourcePath": template})
    for catalog in _find(root, re.compile(r".*\.xcstrings\Z")):
        buckets.append({"format": "xcstrings", "path": catalog})
    return buckets


def _find(root: Path, name: re.Pattern[str], depth: int = 5) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if d not in SKIP and len(rel.parts) < depth]
        found += [(rel / f).as_posix() for f in files if name.match(f)]
    return sorted(found)


def render_config(
    api: str | None, source: str, targets: list[str], buckets: list[dict[str, Any]]
) -> str:
    """The text of a ``tolk.yaml``."""
    document = {"api": api or DEFAULT_API, "source": source, "targets": targets, "buckets": buckets}
    header = (
        "# Tolk: what to translate. The API key comes from TOLK_API_KEY, never this file.\n"
        "# Formats: json yaml po xliff android ios-strings xcstrings arb properties csv\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def ignore_run_files(root: Path) -> bool:
    """Add ``.tolk/`` (run files: per machine, not committed) to the project's ``.gitignore``
    when the project is a git repository or has one. True if the file was changed."""
    ignore = root / ".gitignore"
    if not (root / ".git").exists() and not ignore.exists():
        return False
    text = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if any(line.strip() in (".tolk", ".tolk/", "/.tolk/") for line in text.splitlines()):
        return False
    ignore.write_text(text + ("" if text.endswith("\n") or not text else "\n") + ".tolk/\n")
    return True
