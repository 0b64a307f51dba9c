"""Upstream zram: no deduplication beyond same-filled pages. The baseline."""
from __future__ import annotations

from ..compress import DEFAULT_COMPRESSOR
from .base import ZramLevelMechanism, register
from .events import LINK_NONE, WHEN_INLINE


@register
class UpstreamZram(ZramLevelMechanism):
    name = "upstream_zram"
    title = "upstream zram (same-filled pages only)"
    link = LINK_NONE
    when = WHEN_INLINE
    hashes = "nothing (same-filled test: all 512 8-byte words equal)"
    identity = "none: identical pages are stored twice"
    metadata = "none beyond the slot table"
    source = "Linux drivers/block/zram (mainline)"
    kind = "baseline"
    date = "2024-11-17"
    reference = "linux-zram-zsmalloc"
    summary = "zram as in Linux 6.12-6.18: compress on store, same-filled pages kept as their fill word, no dedup"

    def __init__(self, algo=DEFAULT_COMPRESSOR, mem_limit=0):
        super().__init__(algo, mem_limit)
        self.variant = "mainline"
