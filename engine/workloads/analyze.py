"""The content profile of a page set: what every later comparison builds on.

How many pages there are; how many are zero and how many are other same-filled pages; how
many distinct contents, and how duplicates group by size; and a histogram of compressed
lengths under one of zram's backends (exact models; default the kernel's default, lzo-rle),
with zram's estimated stored size. The profile names the compressor it used.

The work is a map over chunks followed by a merge of counts (:func:`map_chunk` and
:func:`reduce_profiles`). On one machine the chunks run in sequence, and the compressor's
inner loop is compiled and parallel. To scale past one machine, give each worker a range
of chunks. Each worker returns its partial profile: counts plus a map from content digest to
(count, compressed length). Merging the partial profiles is associative. Distinct-content
counting is the one step that needs all digests in one place; past a few hundred million
pages, shard that reduce by digest prefix.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import xxhash

from ..compress import DEFAULT_COMPRESSOR, get_compressor
from ..compress._lz4_kernel import same_filled
from ..pages import PAGE_SIZE, PageSet

HUGE = 3625
LENGTH_BINS = (0, 512, 1024, 1536, 2048, 2560, 3072, HUGE, PAGE_SIZE + 1)
GROUP_BINS = ((2, 2), (3, 4), (5, 8), (9, 16), (17, 64), (65, None))


@dataclass
class Profile:
    pages: int = 0
    zero: int = 0
    same_filled: int = 0
    digests: dict = field(default_factory=dict)      # digest -> [count, compressed length]


def map_chunk(chunk: np.ndarray, comp) -> Profile:
    k = chunk.shape[0]
    flags = np.empty(k, np.uint8)
    fills = np.empty(k, np.uint64)
    same_filled(chunk, flags, fills)
    p = Profile(pages=k)
    p.zero = int(((flags == 1) & (fills == 0)).sum())
    p.same_filled = int(flags.sum()) - p.zero
    rows = np.flatnonzero(flags == 0)
    keys = [xxhash.xxh3_128_digest(chunk[r]) for r in rows]
    blocks, _ = comp.compress_many(chunk[rows], keys) if len(rows) else ([], [])
    for key, blk in zip(keys, blocks):
        d = p.digests.get(key)
        if d is None:
            p.digests[key] = [1, len(blk)]
        else:
            d[0] += 1
    return p


def merge_profile(out: Profile, p: Profile) -> Profile:
    """Add the partial profile ``p`` into ``out`` (in place) and return ``out``."""
    out.pages += p.pages
    out.zero += p.zero
    out.same_filled += p.same_filled
    for key, (c, ln) in p.digests.items():
        d = out.digests.get(key)
        if d is None:
            out.digests[key] = [c, ln]
        else:
            d[0] += c
    return out


def reduce_profiles(parts) -> Profile:
    out = Profile()
    for p in parts:
        merge_profile(out, p)
    return out


def analyze(pages: PageSet, chunk_pages: int = 4096, progress: bool | None = None,
            algo: str = DEFAULT_COMPRESSOR) -> dict:
    """Profile ``pages`` in bounded memory (chunks of the memory-mapped file), compressing with
    ``algo`` (a model name or the kernel's: lzo-rle, lzo, lz4)."""
    from tqdm.std import tqdm          # text bar on stderr; tqdm.auto warns in a notebook without ipywidgets
    comp = get_compressor(algo)
    # the compressor's own cache is not needed: duplicates are folded by digest in the profile
    comp.cache.max_bytes = 0
    bar = tqdm(total=len(pages), unit="page", desc="analyze", disable=None if progress is None else not progress,
               leave=False)
    prof = Profile()
    for _start, chunk in pages.chunks(chunk_pages):    # chunks() releases each chunk once it is read
        merge_profile(prof, map_chunk(chunk, comp))    # fold as we go: what stays is the digests
        bar.update(chunk.shape[0])
    bar.close()
    return summarize(prof, pages.name, comp.kernel_name)


def summarize(prof: Profile, name: str = "", comp_algorithm: str = "") -> dict:
    nonsame = prof.pages - prof.zero - prof.same_filled
    distinct = len(prof.digests)
    groups = Counter()
    dup_pages = 0
    hist = Counter()
    stored = 0
    for c, ln in prof.digests.values():
        hist[_bin(ln)] += c
        stored += c * (PAGE_SIZE if ln >= HUGE else ln)
        if c > 1:
            dup_pages += c - 1
            groups[_group(c)] += 1
    dedup_stored = sum(PAGE_SIZE if ln >= HUGE else ln for _c, ln in prof.digests.values())
    labels = [f"{LENGTH_BINS[i]}-{LENGTH_BINS[i + 1] - 1}" for i in range(len(LENGTH_BINS) - 2)] + [f">={HUGE} (huge)"]
    return {
        "page_set": name,
        "comp_algorithm": comp_algorithm,
        "pages": prof.pages,
        "bytes": prof.pages * PAGE_SIZE,
        "zero_pages": prof.zero,
        "same_filled_pages": prof.same_filled,
        "other_pages": nonsame,
        "distinct_contents": distinct,
        "duplicate_pages": dup_pages,
        "duplicate_share": round(dup_pages / prof.pages, 4) if prof.pages else 0.0,
        "duplicate_groups": {_glabel(g): groups.get(g, 0) for g in GROUP_BINS},
        "compressed_length_histogram": {labels[i]: hist.get(i, 0) for i in range(len(labels))},
        "zram_stored_bytes": stored,
        "zram_stored_bytes_if_deduplicated": dedup_stored,
        "compression_ratio": round(prof.pages * PAGE_SIZE / stored, 3) if stored else None,
    }


def _bin(ln: int) -> int:
    for i in range(len(LENGTH_BINS) - 1):
        if LENGTH_BINS[i] <= ln < LENGTH_BINS[i + 1]:
            return i
    return len(LENGTH_BINS) - 2


def _group(c: int):
    for lo, hi in GROUP_BINS:
        if c >= lo and (hi is None or c <= hi):
            return (lo, hi)
    return GROUP_BINS[-1]


def _glabel(g) -> str:
    lo, hi = g
    return f"{lo}" if lo == hi else (f"{lo}+" if hi is None else f"{lo}-{hi}")


def format_profile(d: dict) -> str:
    lines = [f"page set: {d['page_set']}",
             f"  pages                 {d['pages']:>12}  ({d['bytes'] / 2**20:.1f} MiB)",
             f"  zero pages            {d['zero_pages']:>12}  ({d['zero_pages'] / max(1, d['pages']):.1%})",
             f"  other same-filled     {d['same_filled_pages']:>12}  ({d['same_filled_pages'] / max(1, d['pages']):.1%})",
             f"  other pages           {d['other_pages']:>12}",
             f"  distinct contents     {d['distinct_contents']:>12}",
             f"  duplicate pages       {d['duplicate_pages']:>12}  ({d['duplicate_share']:.1%} of all pages)",
             "  duplicate groups by size:"]
    for k, v in d["duplicate_groups"].items():
        lines.append(f"    {k:>6} copies        {v:>10}")
    lines.append(f"  compressed length ({d.get('comp_algorithm') or 'unknown compressor'}), pages:")
    for k, v in d["compressed_length_histogram"].items():
        lines.append(f"    {k:>16}      {v:>10}")
    lines.append(f"  zram would store      {d['zram_stored_bytes']:>12} bytes (ratio {d['compression_ratio']})")
    lines.append(f"  with dedup of equal   {d['zram_stored_bytes_if_deduplicated']:>12} bytes")
    return "\n".join(lines)
