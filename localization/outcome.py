"""What translating one document gave: its output, the figures of its ``usage``, its warnings,
and which models translated or gave up (filled in by ``localization/pipeline.py`` and its
dispatch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    output: Any
    planned: str  # the chain's first model: the answer when memory served every string
    strings: int = 0
    locked: int = 0
    memory_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    models: list[str] = field(default_factory=list)  # labels that translated something
    fallbacks: list[dict[str, str]] = field(default_factory=list)  # {"model", "error"}
    failures: list[str] = field(default_factory=list)  # "model: summary", no provider text
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The model that translated (the first, if several did)."""
        return self.models[0] if self.models else self.planned

    def reasons(self) -> str:
        """The last few model failures, for an error message (their summaries: no text of
        the document or of a provider's answer)."""
        return "; ".join(self.failures[-3:])

    def usage(self) -> dict[str, Any]:
        """The ``usage`` figures of a job (and of ``/process/localize``)."""
        return {
            "strings": self.strings,
            "lockedStrings": self.locked,
            "memoryHits": self.memory_hits,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "providerCalls": self.calls,
            "model": self.model,
        }
