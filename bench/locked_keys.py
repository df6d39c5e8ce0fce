"""The ``lockedKeys`` matcher on typical and worst-case inputs, against the original one.

    .venv/bin/python -m bench.locked_keys            # a few minutes on a busy 2-core machine
    .venv/bin/python -m bench.locked_keys --quick    # 2,000-string documents, under a minute

Every document has 20,000 strings, the API's limit. ``deep`` nests every string 32 levels
down (the depth limit) in its own branch of one-key objects with 3-character keys, so no
two strings share a prefix below the root and few moves repeat: about 640,000 objects, just
under the 5 MiB body limit, the most work a legal document can ask of the matcher. ``hits``
is the same shape with every key one of 100 names that the adversarial patterns start
with (``L00``...): every object starts or moves a pattern, so every step is a new set of
states. Figures are the seconds to answer ``is_locked`` for every string in document order
(what ``prepare()`` does), and the matcher's own count of its work (``comparisons``: steps
plus wildcard comparisons; for the original matcher, segment comparisons).

The original recursive matcher (copied below) is exponential in the number of ``**`` of a
pattern: it runs only on capped inputs (one path, growing depth), so the script ends.
Where the new matcher takes long (adversarial patterns), it runs on the first strings of the
document and the figure is extrapolated (marked ``~``): the branches of these documents are
alike, so each string costs about the same. Timings move with the machine's load; the
counts do not.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path as FilePath
from typing import Any

from bench.common import machine, write_section
from localization.engine_plan import EnginePlan, ModelChoice
from localization.locked import LockedKeys
from localization.payload import Path, iter_strings
from localization.segments import prepare

STRINGS = 20_000
DEPTH = 32


class OldLockedKeys:
    """The matcher before the rewrite, verbatim but for a comparison counter."""

    def __init__(self, patterns: list[str] | None) -> None:
        self.comparisons = 0
        self._anywhere: list[str] = []
        self._rooted: list[tuple[str, ...]] = []
        for pattern in patterns or []:
            parts = tuple(pattern.split("."))
            if len(parts) == 1 and parts[0] != "**":
                self._anywhere.append(parts[0])
            else:
                self._rooted.append(parts)

    def _segment_matches(self, pattern: str, segment: str) -> bool:
        self.comparisons += 1
        return fnmatchcase(segment, pattern) if "*" in pattern else pattern == segment

    def _prefix_matches(self, pattern: tuple[str, ...], path: Path) -> bool:
        if not pattern:
            return True
        head, rest = pattern[0], pattern[1:]
        if head == "**":
            return any(self._prefix_matches(rest, path[i:]) for i in range(len(path) + 1))
        if not path:
            return False
        return self._segment_matches(head, path[0]) and self._prefix_matches(rest, path[1:])

    def is_locked(self, path: Path) -> bool:
        for name in self._anywhere:
            if any(self._segment_matches(name, segment) for segment in path):
                return True
        return any(self._prefix_matches(pattern, path) for pattern in self._rooted)


# Documents --------------------------------------------------------------------------------


def typical_document(strings: int) -> dict[str, Any]:
    """A CMS-like export: pages with ids, metadata, links and steps, about 5 levels deep."""
    pages: list[dict[str, Any]] = []
    count = 0
    while count < strings:
        steps = [{"heading": f"Step {k}", "body": "Do this.", "slug": f"s-{k}"} for k in range(3)]
        pages.append(
            {
                "id": f"p{len(pages)}",
                "title": "A page",
                "body": "Some text with {name}.",
                "metadata": {"author": "Ann", "code": "X1"},
                "links": {"home_url": "https://example.com", "label": "Home"},
                "steps": steps,
            }
        )
        count += 6 + 3 * len(steps)
    return {"pages": pages}


NAMES = [f"L{a}{b}" for a in string.digits for b in string.digits]  # the hits doc's keys


def deep_document(strings: int, pool: list[str] | None = None, seed: int = 1) -> dict[str, Any]:
    """``strings`` strings, each at depth 32 in its own chain of one-key objects; the keys
    below the root are random (3 characters) or drawn from ``pool``."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    root: dict[str, Any] = {}
    while len(root) < strings:
        key = "".join(rng.choices(alphabet, k=3))
        if key in root:
            continue
        node: Any = "x"
        for _level in range(DEPTH - 1):
            name = rng.choice(pool) if pool else "".join(rng.choices(alphabet, k=3))
            node = {name: node}
        root[key] = node
    return root


# Pattern sets -----------------------------------------------------------------------------

TYPICAL = ["id", "*_url", "metadata.**", "pages.*.steps.*.slug", "**.code"]
SHORT_POISON = ["**.**.**.**.**.**.**.x"]  # 22 characters
WILD_POISON = ["**.?*.**.?*.**.?*.**.?*.**.?*.**.?*.**.x"]  # every key matches ?*


def literal_names(count: int) -> list[str]:
    return [f"name{i}" for i in range(count)]


def live_wildcards(count: int, length: int) -> list[str]:
    """``count`` patterns of at most ``length`` characters: ``**.w.**.w...`` where every
    wildcard ``w`` is distinct (no sharing between patterns) yet matches every key, so
    each pattern keeps a wildcard to try alive at every step."""
    patterns = []
    serial = 0
    for _ in range(count):
        parts = ["**"]
        while True:
            wildcard = f"[!{chr(0x4E00 + serial)}]*"  # a CJK character no key has
            if len(".".join([*parts, wildcard, "never"])) > length:
                break
            parts += [wildcard, "**"]
            serial += 1
        patterns.append(".".join([*parts, "never"]))
    return patterns


def live_chains(count: int, length: int, segments: int = 32) -> list[str]:
    """``**.L07.*.**.*.**...never``: started by a key of the ``hits`` document, then moved
    by every key; no wildcard inside a segment, so this is what literals, ``*`` and ``**``
    alone can cost."""
    patterns = []
    for i in range(count):
        parts = ["**", NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else f"x{i}")]
        while len(".".join([*parts, "*", "**", "never"])) <= length and len(parts) + 3 <= segments:
            parts += ["*", "**"]
        patterns.append(".".join([*parts, "never"]))
    return patterns


def star_runs(count: int, segments: int) -> list[str]:
    """``**.L07.*.*.*...never``: a run of ``*`` keeps one state per place it started."""
    return [".".join(["**", NAMES[i % len(NAMES)], *["*"] * (segments - 3), "never"])
            for i in range(count)]  # fmt: skip


# Runs -------------------------------------------------------------------------------------


def run(
    make: Callable[[list[str]], Any], patterns: list[str], paths: list[Path], cap: int | None
) -> tuple[float, int, bool]:
    """Seconds to build the matcher and answer every path, and its count of work. With a
    ``cap``, only the first ``cap`` paths are asked and the asking is extrapolated."""
    subset = paths if cap is None or cap >= len(paths) else paths[:cap]
    start = time.perf_counter()
    keys = make(patterns)
    built = time.perf_counter()
    for path in subset:
        keys.is_locked(path)
    asked = time.perf_counter() - built
    scale = len(paths) / len(subset)
    return built - start + asked * scale, int(keys.comparisons * scale), scale > 1


def line(label: str, seconds: float, comparisons: int, estimated: bool) -> str:
    mark = "~" if estimated else " "
    return f"  {label:<58} {mark}{seconds:9.3f} s  {mark}{comparisons:>14,} comparisons"


def recommended_worst() -> list[str]:
    """The worst I found within the limits this script argues for: 1,000 patterns of which
    20 dotted of 16 segments (19 runs of ``*`` started by the ``hits`` keys, one that
    starts with 8 wildcards matching every key), the rest bare names."""
    wild = ".".join(f"[!{chr(0x4E00 + i)}]*" for i in range(8))
    dotted = [*star_runs(19, 16), f"**.{wild}.*.*.*.*.*.*.never"]
    return dotted + literal_names(1000 - len(dotted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000-string documents")
    parser.add_argument("--write", type=FilePath, help="also write its BENCHMARKS.md section")
    args = parser.parse_args()
    printed: list[str] = []

    def show(text: str = "") -> None:
        """Print a line; with --write it also goes into the section."""
        printed.append(text)
        print(text, flush=True)

    strings = STRINGS // 10 if args.quick else STRINGS
    plan = EnginePlan("eng_bench", (ModelChoice("pseudo"),))

    paths: dict[str, list[Path]] = {}
    makers = {
        "typical": lambda: typical_document(strings),
        "deep": lambda: deep_document(strings),
        "hits": lambda: deep_document(strings, NAMES),
    }
    for name, make in makers.items():
        doc = make()  # one at a time: a deep document takes a few hundred MB
        paths[name] = [p for p, _ in iter_strings(doc)]
        size = len(json.dumps(doc, separators=(",", ":")).encode())
        nodes = len({p[:k] for p in paths[name] for k in range(1, len(p) + 1)})
        start = time.perf_counter()
        prepare(doc, plan, None, None, None)
        took = time.perf_counter() - start
        show(f"{name}: {len(paths[name]):,} strings, {nodes:,} objects and strings, "
              f"{size / 2**20:.2f} MiB; prepare() without lockedKeys {took:.3f} s")  # fmt: skip
        del doc

    show("\nnew matcher, every string of the document in document order:")
    cases: list[tuple[str, str, list[str], int | None]] = [
        ("typical", "5 typical patterns", TYPICAL, None),
        ("deep", "5 typical patterns", TYPICAL, None),
        ("deep", SHORT_POISON[0], SHORT_POISON, None),
        ("deep", WILD_POISON[0], WILD_POISON, None),
        ("deep", "1,000 bare names", literal_names(1000), None),
        ("deep", "1,000 bare wildcard names (x0*y...)", [f"x{i}*y" for i in range(1000)], 4000),
        ("hits", "10 live chains of 100 chars", live_chains(10, 100), 4000),
        ("hits", "100 live chains of 100 chars", live_chains(100, 100), 4000),
        ("hits", "100 live chains of 200 chars", live_chains(100, 200), 4000),
        ("hits", "1,000 live chains of 500 chars", live_chains(1000, 500), 2000),
        ("hits", "20 runs of 16 *", star_runs(20, 16), 4000),
        ("hits", "100 runs of 32 *", star_runs(100, 32), 2000),
        ("hits", "at the recommended limits, worst found", recommended_worst(), 4000),
        ("deep", "10 patterns of 100 chars, live wildcards", live_wildcards(10, 100), 4000),
        ("deep", "100 patterns of 200 chars, live wildcards", live_wildcards(100, 200), 400),
        ("deep", "1,000 patterns of 500 chars, live wildcards", live_wildcards(1000, 500), 20),
    ]
    for which, label, patterns, cap in cases:
        if args.quick and cap is not None:
            cap = max(1, cap // 10)
        seconds, comparisons, estimated = run(LockedKeys, patterns, paths[which], cap)
        show(line(f"{which}, {label}", seconds, comparisons, estimated))

    show("\noriginal matcher (baseline):")
    seconds, comparisons, estimated = run(OldLockedKeys, TYPICAL, paths["typical"], None)
    show(line("typical, 5 typical patterns", seconds, comparisons, estimated))
    seconds, comparisons, estimated = run(OldLockedKeys, TYPICAL, paths["deep"], None)
    show(line("deep, 5 typical patterns", seconds, comparisons, estimated))
    for pattern in (SHORT_POISON, WILD_POISON):
        for depth in (8, 12, 16, 20):
            path = tuple("a" * (k % 3 + 1) for k in range(depth))
            old = run(OldLockedKeys, pattern, [path], None)
            new = run(LockedKeys, pattern, [path], None)
            show(line(f"one path of depth {depth}, {pattern[0]}", *old))
            show(line("  the new matcher on the same path", *new))
    show("  (depth 32: the original matcher's comparisons grow as C(depth + k, k) for k **)")
    if args.write:
        command = "python -m bench.locked_keys" + (" --quick" if args.quick else "")
        section = (
            "## lockedKeys matcher (`bench/locked_keys.py`)\n\n"
            f"`{command} --write BENCHMARKS.md` on {machine()}. The matcher alone, every string "
            "of a 20,000-string document in document order; `~`: run on the first strings "
            "and scaled. The original (recursive) matcher is the baseline. Requests may send "
            "at most 20 patterns with a dot, 16 segments and 200 characters each, and 8 "
            "segments with a wildcard inside (docs/api.md): the rows past those limits are "
            "refused with a 400 and show why the limits are there; the worst case found "
            "within them is the `recommended limits` row.\n\n"
            "```\n" + "\n".join(printed) + "\n```"
        )
        write_section(args.write, "locked_keys", section)


if __name__ == "__main__":
    main()
