"""Seeded synthetic page sets with named mixes, for experiments and tests.

Each mix writes a page set plus a manifest. The same seed always gives the same bytes.

* ``android-swap``: the literature's Android swap figures. About 6% zero pages, 2.5% other
  same-filled pages, and 15% duplicates of other pages (groups of 2 to 8, spread over
  processes). The rest are unique pages whose compressibility ranges from text-like to
  nearly random, spread over 8 "apps".
* ``identical-vms``: 4 VMs booted from one image. 70% of each VM's pages are identical across
  the VMs, and the rest are unique.
* ``all-unique``: every page distinct, compressible to varying degrees. A worst case for
  dedup, since it costs metadata and saves nothing.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..pages import PAGE_SIZE
from .manifest import Manifest

MIXES = ("android-swap", "identical-vms", "all-unique")
_WORDS = (b"the of and to in is was for that with on as by at from this be are or an it not which have "
          b"memory page kernel swap zram merge process thread alloc free buffer object handle slot value "
          b"android java string class method view layout activity service intent bundle resource").split()


def _vocab(rng: np.random.Generator, n: int) -> np.ndarray:
    """Compressible 'text-like' base pages built from a small word list."""
    out = np.empty((n, PAGE_SIZE), np.uint8)
    for i in range(n):
        buf = bytearray()
        while len(buf) < PAGE_SIZE:
            buf += _WORDS[rng.integers(0, len(_WORDS))] + (b" " if rng.random() < 0.9 else b"\n")
        out[i] = np.frombuffer(bytes(buf[:PAGE_SIZE]), np.uint8)
    # real memory is full of zeroed fields and padding: clear a share of 64-byte blocks
    holes = np.repeat(rng.random((n, PAGE_SIZE // 64)) < rng.uniform(0.2, 0.6, (n, 1)), 64, axis=1)
    out[holes] = 0
    return out


def _unique(rng: np.random.Generator, vocab: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct pages: a vocabulary page with a random share of its 64-byte blocks
    replaced by random bytes (mostly few, sometimes most), so compressibility spans
    text-like to incompressible, with zram-like ratios around 2 to 4 overall."""
    base = vocab[rng.integers(0, len(vocab), n)]
    noise = rng.integers(0, 256, (n, PAGE_SIZE), dtype=np.uint8)
    level = rng.beta(0.7, 3.0, (n, 1))
    mask = np.repeat(rng.random((n, PAGE_SIZE // 64)) < level, 64, axis=1)
    pages = np.where(mask, noise, base).astype(np.uint8)
    pages[:, :8] = noise[:, :8]                  # guarantee distinctness
    return pages


#: pages generated at a time: the unit of the stream (about 16 MiB of pages)
BLOCK = 4096
#: the most pages :func:`write_mix` writes: 64 GiB of pages, whose manifest (about 57 bytes a
#: page) stays under the 1 GiB that a manifest may be when it is read back
MAX_PAGES = 1 << 24
_VADDR_BASE = 0x7F0000000000


def _check(mix: str, n_pages: int) -> None:
    if mix not in MIXES:
        raise InputError(f"mix {mix!r}: unknown; use one of {', '.join(MIXES)}")
    if n_pages < 1:
        raise InputError(f"--pages: need at least one page (got {n_pages})")


def _block_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _android_block(rng: np.random.Generator, vocab: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` pages of the android-swap mix: zero, same-filled, unique, and copies of earlier
    pages of the same block (groups of 2 to 8)."""
    kinds = rng.random(k)
    pages = _unique(rng, vocab, k)
    zero = kinds < 0.06
    same = (kinds >= 0.06) & (kinds < 0.085)
    pages[zero] = 0
    words = rng.integers(1, 2 ** 63, int(same.sum()), dtype=np.int64).astype(np.uint64)
    pages[same] = np.repeat(words, 512).view(np.uint8).reshape(-1, PAGE_SIZE)
    dup_idx = np.flatnonzero(kinds >= 0.85)          # 15%: copies of earlier pages, groups of 2..8
    pool = np.flatnonzero(kinds >= 0.085)[:max(1, k // 20)]
    srcs = rng.choice(pool, size=len(dup_idx)) if len(pool) else []
    for d, s in zip(dup_idx, srcs):
        if s != d:
            pages[d] = pages[s]
    pids = 3000 + rng.integers(0, 8, k)
    return pages, pids


def _vm_layout(n_pages: int) -> list[tuple[int, int, int]]:
    """identical-vms: ``(vm, pages, shared)`` for the 4 VMs; VM v's first ``shared`` pages
    are the common image, the rest its own."""
    vms = 4
    per = max(1, n_pages // vms)
    shared = int(per * 0.7)
    out, left = [], n_pages
    for v in range(vms):
        k = per if v < vms - 1 else n_pages - per * (vms - 1)
        k = max(0, min(k, left))
        left -= k
        out.append((v, k, min(shared, k)))
    return out


def iter_mix(mix: str, n_pages: int, seed: int = 0):
    """The pages of a mix in order, as ``(pages, pids)`` pieces of at most :data:`BLOCK` pages.

    Memory stays at a few blocks whatever ``n_pages`` is. Blocks are drawn in a fixed order:
    the first of each stream from the generator seeded with ``seed`` (so a set of up to
    BLOCK pages is exactly what earlier versions gave for the same seed), every later one from
    its own generator seeded with ``(seed, stream, block)``. The bytes therefore depend on
    ``(mix, n_pages, seed)`` only, never on how a writer cuts them."""
    _check(mix, n_pages)
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng, 32)
    if mix == "all-unique":
        for b, first in enumerate(range(0, n_pages, BLOCK)):
            k = min(BLOCK, n_pages - first)
            yield _unique(rng if b == 0 else _block_rng(seed, 1, b), vocab, k), np.full(k, 1000)
    elif mix == "android-swap":
        for b, first in enumerate(range(0, n_pages, BLOCK)):
            k = min(BLOCK, n_pages - first)
            yield _android_block(rng if b == 0 else _block_rng(seed, 2, b), vocab, k)
    else:
        layout = _vm_layout(n_pages)
        shared = layout[0][2]
        image0 = _unique(rng, vocab, min(shared, BLOCK))          # the image's first block, kept

        def image_block(b: int) -> np.ndarray:
            return image0 if b == 0 else _unique(_block_rng(seed, 3, b), vocab, min(BLOCK, shared - b * BLOCK))
        for v, k, sh in layout:
            for b, first in enumerate(range(0, sh, BLOCK)):
                yield image_block(b)[:min(BLOCK, sh - first)], np.full(min(BLOCK, sh - first), 2000 + v)
            own = k - sh
            own_first = _unique(rng, vocab, min(own, BLOCK))          # drawn in VM order, as before
            for b, first in enumerate(range(0, own, BLOCK)):
                blk = own_first if b == 0 else _unique(_block_rng(seed, 4, v, b), vocab, min(BLOCK, own - first))
                yield blk, np.full(len(blk), 2000 + v)


def generate(mix: str, n_pages: int, seed: int = 0) -> tuple[np.ndarray, Manifest]:
    """The whole mix in memory: ``(pages array, manifest)``. For large sets use
    :func:`write_mix`, which streams."""
    pieces = list(iter_mix(mix, n_pages, seed))
    pages = np.concatenate([p for p, _ in pieces])
    pids = np.concatenate([q for _, q in pieces])
    man = Manifest(source=_source(mix, seed))
    counts = _Counts()
    for va in counts.vaddrs(pids):
        man.vaddr.extend(va.tolist())
    man.pid = pids.tolist()
    man.region = ["[anon]"] * len(man.pid)
    man.processes = counts.processes(mix)
    return pages, man


def _source(mix: str, seed: int) -> str:
    return f"synthetic mix {mix}, seed {seed}"


class _Counts:
    """Per-process page counters: each process's pages sit at consecutive addresses from
    0x7F0000000000, processes in order of first appearance."""

    def __init__(self):
        self.seen: dict[int, int] = {}

    def vaddrs(self, pids: np.ndarray):
        va = np.empty(len(pids), np.int64)
        for p in dict.fromkeys(pids.tolist()):         # the distinct pids in order of appearance
            rows = np.flatnonzero(pids == p)
            k = self.seen.get(p, 0)
            va[rows] = _VADDR_BASE + (k + np.arange(len(rows))) * PAGE_SIZE
            self.seen[p] = k + len(rows)
        yield va

    def processes(self, mix: str) -> list[dict]:
        return [{"pid": p, "comm": f"{mix}-{p}", "cmdline": "", "pages": c} for p, c in self.seen.items()]


def write_mix(mix: str, n_pages: int, out: str, seed: int = 0, force: bool = False,
              chunk_pages: int = BLOCK) -> Manifest:
    """Write the mix to ``out`` and its manifest to ``out.json``, a chunk at a time: memory
    stays bounded (a few blocks of pages, and one small integer per page for the process
    column) for any ``n_pages``. ``chunk_pages`` only sets the size of each write; the bytes
    are the same for any value. Returns the manifest's process table (its columns are on
    disk, not in memory)."""
    import json
    from ..fileio import AtomicFile
    from .manifest import manifest_path
    _check(mix, n_pages)
    if n_pages > MAX_PAGES:
        raise InputError(f"--pages: {n_pages} is more than {MAX_PAGES} (2^24 pages, 64 GiB; its manifest could "
                         f"not be read back)")
    if chunk_pages < 1:
        raise InputError(f"chunk_pages: must be at least 1 (got {chunk_pages})")
    pid_parts = []
    with AtomicFile(out, force=force) as f:
        buf, held = [], 0
        for pages, pids in iter_mix(mix, n_pages, seed):
            pid_parts.append((pids - 1000).astype(np.uint16))     # pids are 1000..2003 or 3000..3007
            buf.append(pages)
            held += len(pages)
            while held >= chunk_pages:
                f.write(_take(buf, chunk_pages).tobytes())
                held -= chunk_pages
        if held:
            f.write(_take(buf, held).tobytes())
        counts = _Counts()
        man = Manifest(source=_source(mix, seed))
        with AtomicFile(manifest_path(out), force=force) as mf:
            # the columns are written in pieces; the text is what json.dumps(man.to_json()) gives
            head = json.dumps({"version": 1, "page_size": PAGE_SIZE, "source": man.source, "processes": None,
                               "notes": []})
            for part in pid_parts:                          # first the per-process counts
                next(counts.vaddrs(part.astype(np.int64) + 1000))
            man.processes = counts.processes(mix)
            addrs = _Counts()                               # then the addresses, a piece at a time
            vaddr_col = (f'"{v:#x}"' for part in pid_parts
                         for v in next(addrs.vaddrs(part.astype(np.int64) + 1000)).tolist())
            comm = {p["pid"]: json.dumps(p["comm"]) for p in man.processes}
            mf.write(head[:-1].replace('"processes": null', '"processes": ' + json.dumps(man.processes)).encode())
            mf.write(b', "pages": {"pid": [')
            _write_column(mf, (str(int(x) + 1000) for part in pid_parts for x in part.tolist()))
            mf.write(b'], "comm": [')
            _write_column(mf, (comm[int(x) + 1000] for part in pid_parts for x in part.tolist()))
            mf.write(b'], "vaddr": [')
            _write_column(mf, vaddr_col)
            mf.write(b'], "region": [')
            _write_column(mf, ('"[anon]"' for part in pid_parts for _ in range(len(part))))
            mf.write(b"]}}")
    return man


def _take(buf: list, k: int) -> np.ndarray:
    """The first ``k`` pages held in ``buf`` (a list of arrays), removed from it."""
    out, need = [], k
    while need:
        head = buf[0]
        if len(head) <= need:
            out.append(buf.pop(0))
            need -= len(head)
        else:
            out.append(head[:need])
            buf[0] = head[need:]
            need = 0
    return out[0] if len(out) == 1 else np.concatenate(out)


def _write_column(f, items, batch: int = 1 << 16) -> None:
    first = True
    piece = []
    for x in items:
        piece.append(x)
        if len(piece) >= batch:
            f.write(((", " if not first else "") + ", ".join(piece)).encode())
            first, piece = False, []
    if piece:
        f.write(((", " if not first else "") + ", ".join(piece)).encode())
