"""The zram device and the zsmalloc pool are extended only through their public hooks.

A design (``engine/mechanisms/*.py``, or any engine module that subclasses the device or the
pool) may override and call the documented hooks of ``ZramDevice`` and ``ZsPool``; it may not
define or touch a member that ``engine/zram.py`` or ``engine/zsmalloc.py`` keep private (a
name with one leading underscore). The first test reads the source with ``ast``; the others
check that a subclass using only the public hooks sees what the device does.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

from engine.events import Recorder
from engine.pages import PAGE_SIZE
from engine.zram import ZRAM_SAME, ZramDevice, is_same_filled
from engine.mechanisms.zram_dedup import ZramDedupDevice
from tests import pagesets

ENGINE = Path(__file__).resolve().parents[1] / "engine"
BASE_FILES = ("zram.py", "zsmalloc.py")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def base_privates() -> dict[str, str]:
    """Every private member of the classes of engine/zram.py and engine/zsmalloc.py: methods,
    class attributes and the ``self._x`` attributes their methods assign; name -> where."""
    found: dict[str, str] = {}
    for fname in BASE_FILES:
        tree = ast.parse((ENGINE / fname).read_text(), fname)
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            where = f"{fname}:{cls.name}"
            for stmt in cls.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.setdefault(stmt.name, where)
                elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    for t in targets:
                        if isinstance(t, ast.Name):
                            found.setdefault(t.id, where)
            for node in ast.walk(cls):
                if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                        and isinstance(node.value, ast.Name) and node.value.id == "self"):
                    found.setdefault(node.attr, where)
    return {k: v for k, v in found.items() if _private(k)}


def _base_name(expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def _engine_modules() -> dict[Path, ast.Module]:
    out = {}
    for path in sorted(ENGINE.rglob("*.py")):
        if path.parent == ENGINE and path.name in BASE_FILES:
            continue
        out[path] = ast.parse(path.read_text(), str(path))
    return out


def extension_classes(modules) -> set[str]:
    """The names of the classes of the base files and of every class deriving from one of
    them, in any engine module (to a fixpoint)."""
    names: set[str] = set()
    for fname in BASE_FILES:
        tree = ast.parse((ENGINE / fname).read_text(), fname)
        names |= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    derived = set(names)
    while True:
        more = {n.name for tree in modules.values() for n in ast.walk(tree)
                if isinstance(n, ast.ClassDef) and any(_base_name(b) in derived for b in n.bases)}
        if more <= derived:
            return derived
        derived |= more


def scanned_modules(modules, derived) -> list[Path]:
    """engine/mechanisms/*.py, and every other engine module that subclasses the device or
    the pool."""
    out = []
    for path, tree in modules.items():
        if path.parent == ENGINE / "mechanisms" or any(
                isinstance(n, ast.ClassDef) and n.name in derived for n in ast.walk(tree)):
            out.append(path)
    return out


def _module_aliases(path: Path, tree: ast.Module) -> set[str]:
    """Names the module binds to other modules (``from .. import _offline_fast as O``): a
    module's own private functions are not members of the device or the pool."""
    rel = path.relative_to(ENGINE.parent).with_suffix("")
    mod = importlib.import_module(".".join(rel.parts))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                name = (a.asname or a.name).split(".")[0]
                if inspect.ismodule(getattr(mod, name, None)):
                    out.add(name)
    return out


def violations(path: Path, tree: ast.Module, privates: dict[str, str], derived: set[str]) -> list[str]:
    aliases = _module_aliases(path, tree)
    found = []
    rel = path.relative_to(ENGINE.parent)

    def visit(node, cls):
        if isinstance(node, ast.ClassDef):
            if node.name in derived:
                for stmt in node.body:
                    names = []
                    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names = [stmt.name]
                    elif isinstance(stmt, ast.Assign):
                        names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                        names = [stmt.target.id]
                    for n in names:
                        if n in privates:
                            found.append(f"{rel}:{stmt.lineno}: {node.name} defines {n} "
                                         f"(private in {privates[n]})")
            cls = node
        elif (isinstance(node, ast.ImportFrom) and node.module
              and node.module.split(".")[-1] in {f[:-3] for f in BASE_FILES}):
            for a in node.names:
                if _private(a.name):
                    found.append(f"{rel}:{node.lineno}: imports {a.name} from {node.module}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in privates:
            found.append(f"{rel}:{node.lineno}: names {node.value!r} (private in {privates[node.value]})")
        elif isinstance(node, ast.Attribute) and node.attr in privates:
            v = node.value
            own = (isinstance(v, ast.Name) and v.id in ("self", "cls") and cls is not None
                   and cls.name not in derived)                  # a class's own member of that name
            if not own and not (isinstance(v, ast.Name) and v.id in aliases):
                found.append(f"{rel}:{node.lineno}: uses .{node.attr} (private in {privates[node.attr]})")
        for child in ast.iter_child_nodes(node):
            visit(child, cls)

    visit(tree, None)
    return found


def test_designs_reach_the_device_and_the_pool_only_through_public_hooks():
    privates = base_privates()
    # the scan sees the members it must guard (a check that cannot fail is a defect)
    assert {"_write_pages_fast", "_slots", "_arrays", "_handles"} <= set(privates)
    modules = _engine_modules()
    derived = extension_classes(modules)
    assert {"ZramDedupDevice", "ZramMergeDevice", "ZramFoldDevice", "FoldingZsPool", "ClaimStore",
            "Zram314Device", "SwapDisk"} <= derived
    scanned = scanned_modules(modules, derived)
    assert ENGINE / "mechanisms" / "zram_dedup.py" in scanned and ENGINE / "mechanisms" / "combine.py" in scanned
    bad = [v for p in scanned for v in violations(p, modules[p], privates, derived)]
    assert not bad, "\n".join(bad)


def test_the_scan_flags_a_design_that_reaches_into_a_private_member():
    privates = base_privates()
    src = ("from engine.zram import ZramDevice\n"
           "class Peek(ZramDevice):\n"
           "    def _slot_free(self, index, reason):\n"         # defines a private name of the base
           "        return None\n"
           "    def peek(self):\n"
           "        return self.pool._arrays\n"                 # reaches into the pool
           "    def peek_dict(self):\n"
           "        return self.__dict__.get('_slots')\n"       # or by name
           "class Own:\n"
           "    def _slots(self):\n"                            # another class's own member: fine
           "        return self._slots\n")
    tree = ast.parse(src)
    path = ENGINE / "mechanisms" / "upstream_zram.py"               # any importable engine module
    bad = violations(path, tree, privates | {"_slot_free": "zram.py:ZramDevice"}, {"Peek", "ZramDevice"})
    assert len(bad) == 3 and "defines _slot_free" in bad[0] and "uses ._arrays" in bad[1]
    assert "names '_slots'" in bad[2]


# -- a design that uses only the public hooks ---------------------------------------------------
def _counting(base):
    class CountingFrees(base):
        """Records every slot it releases, through the public ``slot_free`` hook only."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.frees = []

        def slot_free(self, index, reason):
            if self.slot_allocated(index):
                self.frees.append((index, reason))
            super().slot_free(index, reason)
    return CountingFrees


NSLOTS = 256


def _sequence(dev, after_batch=None):
    """Writes, overwrites, discards, swap frees and a refused write; the frees they cause are
    written out by hand in EXPECTED_FREES."""
    mixed = pagesets.mixed_pages()
    first = np.array(mixed.array[:128])
    second = np.array(mixed.array[300:380])
    assert any(is_same_filled(p)[0] for p in first) and any(is_same_filled(p)[0] for p in second)
    assert dev.write_pages(first) == 0                            # slots 0..127, fresh
    assert dev.write_pages(second, indexes=range(20, 100)) == 0   # overwrites 20..99
    if after_batch is not None:
        after_batch(dev)
    assert dev.write_page(5, pagesets.text_pages(1).array[0])     # overwrite of slot 5
    dev.discard(range(100, 110), io_pages=4)                      # 100..109
    dev.slot_free_notify(0)
    dev.slot_free_notify(1)
    dev.slot_free_notify(200)                                     # never written: nothing to free
    dev.discard([150])                                            # never written either
    dev.set_mem_limit(dev.pool.total_pages() * PAGE_SIZE)
    assert not dev.write_page(2, pagesets.random_pages(1, seed=9).array[0])   # refused: slot 2 kept
    assert dev.write_page(3, (7).to_bytes(8, "little") * 512)     # same-filled: no allocation


EXPECTED_FREES = ([(i, "overwrite") for i in range(20, 100)] + [(5, "overwrite")]
                  + [(i, "discard") for i in range(100, 110)] + [(0, "swap_free"), (1, "swap_free")]
                  + [(3, "overwrite")])


def _state(dev):
    return dev.stats(), [dev.read_page(i) for i in range(NSLOTS)]


@pytest.mark.parametrize("base", [ZramDevice, ZramDedupDevice], ids=lambda c: c.__name__)
def test_a_design_using_only_public_hooks_sees_every_free_with_its_reason(base):
    results = {}
    for compiled in (True, False):
        dev = _counting(base)(NSLOTS * PAGE_SIZE)
        dev.compiled = compiled
        _sequence(dev)
        # an override of a public hook makes the compiled path stand aside, so none is missed
        assert dev.slot_arrays is None and not dev.in_array_form()
        assert dev.frees == EXPECTED_FREES
        assert dev.read_page(2) != pagesets.random_pages(1, seed=9).array[0].tobytes()
        assert dev.io_stat()["failed_writes"] == 1 and dev.io_stat()["notify_free"] == 10 + 1 + 3
        results[compiled] = _state(dev)
    # and the design's device behaves as the plain one does, on the plain one's compiled path
    plain = base(NSLOTS * PAGE_SIZE)
    ran_compiled = []
    _sequence(plain, after_batch=lambda d: ran_compiled.append(d.in_array_form()))
    assert ran_compiled == [True]
    assert results[True] == results[False] == _state(plain)


def test_the_reference_paths_events_name_the_same_frees():
    dev = ZramDevice(NSLOTS * PAGE_SIZE)
    rec = Recorder()
    dev.bus.subscribe(rec)
    _sequence(dev)
    assert [(e.index, e.reason) for e in rec.of("zram.slot_freed")] == EXPECTED_FREES
    freed_same = [e for e in rec.of("zram.slot_freed") if e.flag == "same"]
    assert freed_same and all(e.size == 0 for e in freed_same)
    assert dev.slot_allocated(3) and dev.flags[3] & ZRAM_SAME
