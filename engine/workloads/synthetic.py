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


def generate(mix: str, n_pages: int, seed: int = 0) -> tuple[np.ndarray, Manifest]:
    if mix not in MIXES:
        raise InputError(f"mix {mix!r}: unknown; use one of {', '.join(MIXES)}")
    if n_pages < 1:
        raise InputError(f"--pages: need at least one page (got {n_pages})")
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng, 32)
    if mix == "all-unique":
        pages = _unique(rng, vocab, n_pages)
        pids = np.full(n_pages, 1000)
    elif mix == "identical-vms":
        vms = 4
        per = max(1, n_pages // vms)
        shared = int(per * 0.7)
        image = _unique(rng, vocab, shared)
        parts, pid_parts = [], []
        for v in range(vms):
            k = per if v < vms - 1 else n_pages - per * (vms - 1)
            own = _unique(rng, vocab, max(0, k - shared))
            parts.append(np.concatenate([image[:min(shared, k)], own])[:k])
            pid_parts.append(np.full(k, 2000 + v))
        pages = np.concatenate(parts)[:n_pages]
        pids = np.concatenate(pid_parts)[:n_pages]
    else:
        kinds = rng.random(n_pages)
        pages = _unique(rng, vocab, n_pages)
        zero = kinds < 0.06
        same = (kinds >= 0.06) & (kinds < 0.085)
        pages[zero] = 0
        words = rng.integers(1, 2 ** 63, int(same.sum()), dtype=np.int64).astype(np.uint64)
        pages[same] = np.repeat(words, 512).view(np.uint8).reshape(-1, PAGE_SIZE)
        dup_idx = np.flatnonzero(kinds >= 0.85)          # 15%: copies of earlier pages, groups of 2..8
        pool = np.flatnonzero(kinds >= 0.085)[:max(1, n_pages // 20)]
        srcs = rng.choice(pool, size=len(dup_idx)) if len(pool) else []
        for d, s in zip(dup_idx, srcs):
            if s != d:
                pages[d] = pages[s]
        pids = 3000 + rng.integers(0, 8, n_pages)
    man = Manifest(source=f"synthetic mix {mix}, seed {seed}")
    seen = {}
    for i, pid in enumerate(pids.tolist()):
        k = seen.get(pid, 0)
        seen[pid] = k + 1
        man.pid.append(pid)
        man.vaddr.append(0x7F0000000000 + k * PAGE_SIZE)
        man.region.append("[anon]")
    man.processes = [{"pid": p, "comm": f"{mix}-{p}", "cmdline": "", "pages": c} for p, c in seen.items()]
    return pages, man


def write_mix(mix: str, n_pages: int, out: str, seed: int = 0, force: bool = False) -> Manifest:
    import json
    from ..fileio import AtomicFile
    from .manifest import manifest_path
    pages, man = generate(mix, n_pages, seed)
    with AtomicFile(out, force=force) as f:
        f.write(pages.tobytes())
        with AtomicFile(manifest_path(out), force=force) as mf:
            mf.write(json.dumps(man.to_json()).encode())
    return man
