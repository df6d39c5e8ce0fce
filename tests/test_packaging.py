"""What an install ships is what the checkout holds: every package and top-level module of
the service is listed in pyproject.toml, so a wheel (or an image built from one) has them
all, and nothing listed is missing."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = {"tests", "bench", "var", "build"}


def _declared() -> tuple[set[str], set[str]]:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(tool["packages"]), set(tool["py-modules"])


def test_every_package_of_the_checkout_is_declared() -> None:
    packages, _ = _declared()
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in ROOT.rglob("__init__.py")
        if not init.relative_to(ROOT).parts[0].startswith(".")
        and init.relative_to(ROOT).parts[0] not in NOT_SHIPPED
        and "egg-info" not in init.relative_to(ROOT).parts[0]
    }
    assert found == packages


def test_every_top_level_module_is_declared() -> None:
    _, modules = _declared()
    found = {path.stem for path in ROOT.glob("*.py")}
    assert found == modules
