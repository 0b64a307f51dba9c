"""One zram scenario, run on the model or on the live kernel with identical operations.

The order is fixed and documented (it is the CLI's contract): store every page of the page set
into slots 0..n-1; discard ``discard``; overwrite slot ``overwrite[k]`` with page
``k mod len(overwrite_with)`` of the overwrite file; compact. ``mem_limit`` is set before the
first store.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .pages import PAGE_SIZE, PageSet
from .zram import ZramDevice, ZramStats


@dataclass
class ZramScenario:
    pages: PageSet
    algo: str = "kernel-lz4"
    discard: list[int] = field(default_factory=list)
    overwrite: list[int] = field(default_factory=list)
    overwrite_with: PageSet | None = None
    compact: bool = False
    mem_limit: int = 0

    def __post_init__(self):
        if self.overwrite and self.overwrite_with is None:
            from .errors import InputError
            raise InputError("--overwrite needs --overwrite-with FILE (the pages to write)")

    @property
    def disksize(self) -> int:
        top = len(self.pages)
        for lst in (self.discard, self.overwrite):
            if lst:
                top = max(top, max(lst) + 1)
        return top * PAGE_SIZE

    def _overwrite_rows(self):
        m = len(self.overwrite_with)
        rows = [k % m for k in range(len(self.overwrite))]
        return self.overwrite_with.array[rows]

    def apply(self, target) -> ZramStats:
        """Run the operations on ``target`` (a ZramDevice or a KernelZram) and return its stats."""
        target.write_pages(self.pages)
        if self.discard:
            target.discard(self.discard)
        if self.overwrite:
            target.write_pages(self._overwrite_rows(), indexes=self.overwrite)
        if self.compact:
            target.compact()
        return target.stats()

    def model(self, bus=None) -> ZramDevice:
        return ZramDevice(self.disksize, self.algo, mem_limit=self.mem_limit, bus=bus)

    def run_model(self, bus=None) -> ZramStats:
        return self.apply(self.model(bus))

    def run_kernel(self) -> ZramStats:
        from .kernel.zram0 import KernelZram
        from .compress import get_compressor
        get_compressor(self.algo) if self.algo.startswith("kernel-") else None
        with KernelZram(self.disksize, self.algo, mem_limit=self.mem_limit) as k:
            return self.apply(k)


def diff_stats(a: ZramStats, b: ZramStats) -> list[tuple[str, str, int, int]]:
    """Fields that differ: (group, field, a, b)."""
    out = []
    for group in ("mm_stat", "io_stat"):
        da, db = getattr(a, group), getattr(b, group)
        for k in da:
            if da[k] != db.get(k):
                out.append((group, k, da[k], db.get(k)))
    return out
