"""Keep numba's disk cache of the engine's compiled code in step with its sources.

Numba keys a cached function on its own source file only. A compiled function that calls
into another file (the zram write path calls the compressors, the compressors call the
shared word-access helpers) keeps running the old compiled callee after that other file
changes, and nothing says so. The engine's compiled modules are few, so the cache is
invalidated as a whole: a stamp of their sources is kept beside the cache, and when it
differs, the engine's cache files (``*.nbi``, ``*.nbc`` in its ``__pycache__`` folders) are
removed before anything compiled is loaded. Only regular files with those endings are
removed. Where the folders cannot be written, or ``NUMBA_CACHE_DIR`` puts the cache
elsewhere, nothing is done.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STAMP = "numba-sources.stamp"


def compiled_sources(root: Path = ROOT) -> list[Path]:
    """The engine's modules that hold numba-compiled code."""
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts and "njit" in p.read_text())


def sources_stamp(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for p in compiled_sources(root):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def refresh(root: Path = ROOT) -> list[Path]:
    """Remove the cache files when the compiled sources changed since they were written;
    return what was removed."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return []
    stamp_path = root / "__pycache__" / STAMP
    now = sources_stamp(root)
    try:
        if stamp_path.read_text() == now:
            return []
    except OSError:
        pass
    removed = []
    for cache in root.rglob("__pycache__"):
        if not cache.is_dir() or cache.is_symlink():
            continue
        for e in os.scandir(cache):
            if e.name.endswith((".nbi", ".nbc")) and e.is_file(follow_symlinks=False):
                try:
                    os.unlink(e.path)
                    removed.append(Path(e.path))
                except OSError:
                    pass
    try:
        stamp_path.parent.mkdir(exist_ok=True)
        if stamp_path.is_symlink():
            return removed
        # a new file of our own (never through a planted link), renamed over the stamp
        fd, tmp = tempfile.mkstemp(dir=stamp_path.parent, prefix=f".{STAMP}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(now)
            os.replace(tmp, stamp_path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError:
        pass
    return removed
