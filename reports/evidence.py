"""Collecting engine events during a run, as evidence for claim-chart rows."""
from __future__ import annotations

from collections import defaultdict

from engine.events import Event


def _matches(ev: Event, kind: str, where: dict) -> bool:
    if ev.kind != kind:
        return False
    for k, v in where.items():
        if getattr(ev, k, None) != v:
            return False
    return True


def excerpt(ev: Event, limit: int = 220) -> str:
    d = ev.to_dict()
    d.pop("kind")
    parts = []
    for k, v in d.items():
        if isinstance(v, int) and not isinstance(v, bool) and (k in ("handle", "kpfn", "old_pfn", "new_pfn", "vaddr", "value")
                                                               or v > 1 << 32):
            v = hex(v)
        parts.append(f"{k}={v}")
    s = f"{ev.kind} " + ", ".join(parts)
    return s if len(s) <= limit else s[:limit - 1] + "…"


class EvidenceCollector:
    """Counts events matching each (kind, field filter) asked for, keeps the first few as
    excerpts of the real trace, and counts every kind."""

    def __init__(self, filters: list[tuple[str, dict]], keep: int = 2):
        self.filters = [(k, dict(w)) for k, w in filters]
        self.keep = keep
        self.counts = defaultdict(int)
        self.samples = defaultdict(list)
        self.kind_counts = defaultdict(int)
        self._by_kind = defaultdict(list)
        for i, (k, w) in enumerate(self.filters):
            self._by_kind[k].append(i)

    def __call__(self, ev: Event) -> None:
        self.kind_counts[ev.kind] += 1
        for i in self._by_kind.get(ev.kind, ()):
            k, w = self.filters[i]
            if _matches(ev, k, w):
                self.counts[i] += 1
                if len(self.samples[i]) < self.keep:
                    self.samples[i].append(excerpt(ev))

    def result(self, kind: str, where: dict) -> tuple[int, list[str]]:
        for i, (k, w) in enumerate(self.filters):
            if k == kind and w == where:
                return self.counts[i], self.samples[i]
        return 0, []
