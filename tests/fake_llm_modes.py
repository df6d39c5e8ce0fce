"""How the LLM stand-in behaves, chosen by the request's ``model`` name: the part before the
first ``:`` is the mode (``drop-keys:t1``), the whole name keys the per-model state, so tests
namespace their state by suffix. Unknown modes behave as ``good``. Answers are
deterministic (see :func:`fake_translation`); the misbehaviours are the ones real providers
show.

Modes: ``good``, ``drop-keys``, ``rename-keys``, ``malformed``, ``malformed-once``,
``break-placeholder``, ``break-placeholder-once``, ``ignore-glossary``, ``ratelimit-once``,
``slow``, ``slow-once``, ``lagging`` (good, after ``lag_seconds``), ``unauthorized``,
``unknown-model``, ``server-error``,
``echo-refusal`` (400) and ``echo-outage`` (503), whose error messages quote the request.

Review requests (a USER JSON with ``task`` ``score`` or ``drift``, see
:func:`fake_verdict`) get verdicts: 95 and ``none`` in every mode but ``low-score`` (40 and
``major``), ``low-score-once`` (low the first time an item's source is judged, good after)
and ``bad-review`` (verdicts out of their range); the error, ``malformed`` and ``slow``
modes behave as for translations.

"First time an item text is seen" counts per full model name over the requests that got a
translation answer; "first request" counts per full model name over the requests that got
past the key, header and body checks (``tests/fake_llm_wire.py::refusal``).
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fake_llm_wire import ANTHROPIC_TOOL, Parsed, Reply, completion, error, said

# Opaque placeholder tokens: U+27E6, digits, U+27E7.
TOKEN = re.compile("\u27e6\\d+\u27e7")

MODES = frozenset(
    {
        "good",
        "drop-keys",
        "rename-keys",
        "malformed",
        "malformed-once",
        "break-placeholder",
        "break-placeholder-once",
        "ignore-glossary",
        "ratelimit-once",
        "slow",
        "slow-once",
        "lagging",
        "unauthorized",
        "unknown-model",
        "server-error",
        "echo-refusal",
        "echo-outage",
        "low-score",
        "low-score-once",
        "bad-review",
    }
)
LOW_SCORE = 40
GOOD_SCORE = 95


def mode_of(model: str) -> str:
    """The behaviour a model name selects: the part before the first ``:``."""
    mode = model.split(":", 1)[0]
    return mode if mode in MODES else "good"


def fake_translation(
    text: str, target_locale: str, glossary: Iterable[Mapping[str, Any]] | None = None
) -> str:
    """The deterministic "translation": every glossary term (case-insensitive, whole word)
    replaced by its translation outside the ``⟦n⟧`` tokens, then ``"<target>: "`` prefixed.

    >>> fake_translation("Open the course ⟦0⟧", "de", [{"term": "course", "translation": "Kurs"}])
    'de: Open the Kurs ⟦0⟧'
    """
    pairs = [
        (str(entry["term"]), str(entry["translation"]))
        for entry in glossary or ()
        if entry.get("term")
    ]
    if pairs:
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)  # longest term wins
        alternatives = "|".join(re.escape(term) for term, _ in pairs)
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

        def replace(match: re.Match[str]) -> str:
            for term, translation in pairs:
                if re.fullmatch(re.escape(term), match.group(0), re.IGNORECASE):
                    return translation
            return match.group(0)

        # Split on the tokens (kept, at odd indices) so they are never touched.
        parts = re.split(f"({TOKEN.pattern})", text)
        text = "".join(
            part if index % 2 else pattern.sub(replace, part) for index, part in enumerate(parts)
        )
    return f"{target_locale}: {text}"


def fake_verdict(task: str, low: bool) -> dict[str, Any]:
    """The verdict on one review item: low (``LOW_SCORE``, ``major``) or good."""
    if task == "score":
        score = LOW_SCORE if low else GOOD_SCORE
        return {"score": score, "reason": "fake: too literal" if low else "fake: fine"}
    return {
        "drift": "major" if low else "none",
        "reason": "fake: meaning changed" if low else "fake: same meaning",
    }


@dataclass
class _ModelState:
    requests: int = 0
    seen: set[str] = field(default_factory=set)
    judged: set[str] = field(default_factory=set)  # review item sources judged


class Modes:
    """The modes' memory for one server: per full model name, its requests and the texts
    it has seen; the answer ids; the seeded spread of ``slow``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, _ModelState] = {}
        self._ids = itertools.count(1)
        self._random = random.Random(0)

    def reset(self) -> None:
        """Forget every model's state (first requests, texts seen)."""
        with self._lock:
            self._state.clear()

    def reply(
        self,
        api: str,
        parsed: Parsed,
        size: int,
        *,
        slow_seconds: float,
        slow_spread: float,
        lag_seconds: float,
    ) -> Reply:
        """The answer to a request that got past the key, header and body checks; ``size``
        is its body's length in bytes. ``slow`` answers after ``slow_seconds`` plus or minus
        up to ``slow_spread``, ``lagging`` after ``lag_seconds``."""
        model = parsed.model
        mode = mode_of(model)
        if mode == "unauthorized":
            return error(api, 401, said(api, "unauthorized"))
        if mode == "unknown-model":
            return error(api, 404, said(api, "unknown-model", model))
        if mode == "server-error":
            return error(api, 500, said(api, "server-error"))

        task = (parsed.user or {}).get("task")
        key = "source" if task else "text"
        texts = [item[key] for item in parsed.items]
        if mode in ("echo-refusal", "echo-outage"):
            # Providers quote the request in their errors ("Invalid 'messages[1].content':
            # ..."): a refusal (400) or an outage (503) that does.
            quoted = f"could not process the input: {texts[0] if texts else ''!r}"
            return error(api, 400 if mode == "echo-refusal" else 503, quoted)
        with self._lock:
            state = self._state.setdefault(model, _ModelState())
            first_request = state.requests == 0
            state.requests += 1
            if mode == "ratelimit-once" and first_request:
                return error(api, 429, said(api, "ratelimit"), {"Retry-After": "1"})
            malformed = mode == "malformed" or (mode == "malformed-once" and first_request)
            fresh: set[str] = set()
            if not malformed:
                known = state.judged if task else state.seen
                fresh = {text for text in texts if text not in known}
                known.update(texts)
            ident = next(self._ids)

        delay = 0.0
        if mode == "slow" or (mode == "slow-once" and first_request):
            with self._lock:
                spread = self._random.uniform(-slow_spread, slow_spread)
            delay = max(0.0, slow_seconds + spread)
        elif mode == "lagging":
            delay = lag_seconds
        if malformed:
            answer = None
        elif task:
            answer = {"items": _verdict_items(mode, task, parsed.items, fresh)}
        else:
            answer = {"items": _answer_items(mode, parsed.user or {}, fresh)}
        body = completion(api, ident, model, answer, size // 4, _forced_tool(parsed))
        return Reply(200, body, delay=delay)


def _forced_tool(parsed: Parsed) -> str:
    """The tool an Anthropic request forces (``tool_choice``), else the translations'."""
    choice = (parsed.request or {}).get("tool_choice")
    name = choice.get("name") if isinstance(choice, dict) else None
    return name if isinstance(name, str) else ANTHROPIC_TOOL


def _verdict_items(
    mode: str, task: str, items: list[dict[str, Any]], fresh: set[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        low = mode == "low-score" or (mode == "low-score-once" and item["source"] in fresh)
        verdict = fake_verdict(task, low)
        if mode == "bad-review":
            verdict = {"score": 250, "reason": ""} if task == "score" else {"drift": "huge"}
        out.append({"id": item["id"], **verdict})
    return out


def _answer_items(mode: str, user: dict[str, Any], fresh: set[str]) -> list[dict[str, str]]:
    target = user["targetLocale"]
    glossary = None if mode == "ignore-glossary" else user.get("glossary")
    out: list[dict[str, str]] = []
    for position, item in enumerate(user["items"]):
        first_seen = item["text"] in fresh
        odd = position % 2 == 1
        if mode == "drop-keys" and odd and first_seen:
            continue
        ident = item["id"] + "x" if mode == "rename-keys" and odd and first_seen else item["id"]
        text = fake_translation(item["text"], target, glossary)
        if mode == "break-placeholder" or (mode == "break-placeholder-once" and first_seen):
            text = TOKEN.sub("", text, count=1)
        out.append({"id": ident, "text": text})
    return out
