"""Small shared helpers."""
from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def no_gc():
    """Pause Python's cyclic garbage collector around a hot batch loop.

    The engine's batch loops allocate many small objects (handles, PTEs, rmap_items) and make no
    reference cycles, but each allocation burst triggers full collections that walk every live
    object of a large model. Pausing the collector for the loop changes nothing but speed.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def package_version() -> str:
    """The installed pagemerge distribution's version (``0+unknown`` in an uninstalled checkout)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("pagemerge")
    except PackageNotFoundError:
        return "0+unknown"

