"""``tolk.yaml``: the project's configuration, and where each bucket's files are.

A bucket's ``path`` has ``[locale]`` where the platform spells the locale (the format's
``path_locale``) and may have ``*`` (one path segment) or ``**`` (any) wildcards; each file the
pattern matches for the source locale is one bucket file, and its targets are found by putting
each target locale into the same pattern with the same wildcard parts. ``sourcePath`` names the
source file when it breaks the pattern (Android ``res/values/strings.xml``, a ``.pot``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from client.formats import MODULES, FileFormat, get_format
from localization.language import normalize_locale

CONFIG_FILE = "tolk.yaml"
LOCK_FILE = "tolk.lock"
DEFAULT_API = "http://127.0.0.1:8000"


class ConfigError(Exception):
    """Bad configuration: one line naming the culprit (exit code 2)."""


class BucketModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    format: str
    path: str = Field(min_length=1)
    source_path: str | None = Field(default=None, alias="sourcePath", min_length=1)
    locked_keys: list[str] = Field(default_factory=list, alias="lockedKeys")

    @field_validator("format")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in MODULES:
            raise ValueError(f"unknown format '{value}' (one of {', '.join(MODULES)})")
        return value


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    api: str = DEFAULT_API
    source: str
    targets: list[str] = Field(min_length=1)
    engine: str | None = None
    context: str | None = None
    buckets: list[BucketModel] = Field(min_length=1)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return normalize_locale(value)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        out = [normalize_locale(tag) for tag in value]
        if len(set(out)) != len(out):
            raise ValueError("a target locale is listed twice")
        return out


@dataclass(frozen=True)
class Bucket:
    index: int
    format: FileFormat
    path: str
    source_path: str | None
    locked_keys: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.format.name


@dataclass(frozen=True)
class BucketFile:
    """One source file of a bucket and, per target locale, the file it becomes."""

    bucket: Bucket
    source: str  # relative to the project root, with "/"
    targets: dict[str, str]


@dataclass(frozen=True)
class Config:
    root: Path
    api: str
    source: str
    targets: tuple[str, ...]
    engine: str | None
    context: str | None
    buckets: tuple[Bucket, ...]

    def files(self, targets: tuple[str, ...] | None = None) -> list[BucketFile]:
        """Every bucket file of the project, in configuration order."""
        chosen = targets or self.targets
        out: list[BucketFile] = []
        for bucket in self.buckets:
            out.extend(_bucket_files(self.root, bucket, self.source, chosen))
        return out


def _pattern_regex(pattern: str, locale_spelling: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\[locale\])", pattern)
    regex = ""
    for part in parts:
        if part == "**":
            regex += "(.*)"
        elif part == "*":
            regex += "([^/]*)"
        elif part == "[locale]":
            regex += re.escape(locale_spelling)
        else:
            regex += re.escape(part)
    return re.compile(regex + r"\Z")


def _fill(pattern: str, locale_spelling: str, wildcards: tuple[str, ...]) -> str:
    values = iter(wildcards)
    parts = re.split(r"(\*\*|\*|\[locale\])", pattern)
    return "".join(
        locale_spelling if p == "[locale]" else next(values, "") if p in ("*", "**") else p
        for p in parts
    )


def _bucket_files(
    root: Path, bucket: Bucket, source: str, targets: tuple[str, ...]
) -> list[BucketFile]:
    fmt = bucket.format
    spelled = fmt.path_locale(source)

    def target_paths(wildcards: tuple[str, ...], fallback: str) -> dict[str, str]:
        if fmt.multi_locale:
            return dict.fromkeys(targets, fallback)
        return {t: _fill(bucket.path, fmt.path_locale(t), wildcards) for t in targets}

    if bucket.source_path is not None:
        wild = tuple("" for _ in re.findall(r"\*\*|\*", bucket.path))
        return [BucketFile(bucket, bucket.source_path, target_paths(wild, bucket.source_path))]
    if "*" not in bucket.path:
        source_file = _fill(bucket.path, spelled, ())
        return [BucketFile(bucket, source_file, target_paths((), source_file))]
    regex = _pattern_regex(bucket.path, spelled)
    glob = bucket.path.replace("[locale]", spelled)
    found = []
    for path in sorted(root.glob(glob)):
        rel = path.relative_to(root).as_posix()
        match = regex.match(rel)
        if match and path.is_file():
            found.append(BucketFile(bucket, rel, target_paths(match.groups(), rel)))
    return found


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "tolk.yaml"
    message = first["msg"].removeprefix("Value error, ")
    more = len(err.errors()) - 1
    return f"{where}: {message}" + (f" (and {more} more)" if more else "")


def load_config(root: Path) -> Config:
    """Read and check ``tolk.yaml`` in ``root``; ``TOLK_API_URL`` overrides ``api``."""
    path = root / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{CONFIG_FILE} not found in {root} (run `tolk init`)") from None
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{CONFIG_FILE}: cannot be read as UTF-8 text") from None
    return check_config(root, text)


def check_config(root: Path, text: str) -> Config:
    """The configuration a ``tolk.yaml`` text gives for the project in ``root``."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{CONFIG_FILE}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{CONFIG_FILE}: expected a mapping of settings")
    try:
        model = ConfigModel.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{CONFIG_FILE}: {_one_line(err)}") from None
    if model.source in model.targets:
        raise ConfigError(f"{CONFIG_FILE}: targets: the source '{model.source}' is also a target")
    buckets = []
    for index, b in enumerate(model.buckets):
        fmt = get_format(b.format)
        if fmt.multi_locale and "[locale]" in b.path:
            raise ConfigError(
                f"{CONFIG_FILE}: buckets.{index}.path: a {b.format} file holds every locale; "
                "its path has no [locale]"
            )
        if not fmt.multi_locale and "[locale]" not in b.path:
            raise ConfigError(f"{CONFIG_FILE}: buckets.{index}.path: needs [locale]")
        for p in (b.path, b.source_path or ""):
            if p.startswith("/") or ".." in Path(p).parts:
                raise ConfigError(
                    f"{CONFIG_FILE}: buckets.{index}: paths stay inside the project ('{p}')"
                )
        buckets.append(Bucket(index, fmt, b.path, b.source_path, tuple(b.locked_keys)))
    api = os.environ.get("TOLK_API_URL") or model.api
    return Config(
        root=root,
        api=api.rstrip("/"),
        source=model.source,
        targets=tuple(model.targets),
        engine=model.engine,
        context=model.context,
        buckets=tuple(buckets),
    )


def find_root(start: Path) -> Path:
    """The nearest directory from ``start`` upwards holding ``tolk.yaml`` (else ``start``)."""
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).exists():
            return folder
    return start
