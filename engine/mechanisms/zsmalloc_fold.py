"""zsmalloc object folding (Alexey Romanov, RFC, 18 Apr 2023, "Introduce objects folding
mechanism").

This mechanism works at the allocator, below zram. A trigger (``zs_fold``, driven by a zram
``fold`` knob) walks each size class, largest first, through its zspages from the emptiest
group to the full one, and through each zspage's objects in address order. It hashes each
object with XXH64 into a table with as many buckets as the class has objects in use, and
memcmps it with the earlier objects in its bucket. When two are equal, the later object's
handle is repointed to the earlier object (``handle -> object``), a per-class tree counts
the handles that share the surviving object, and the folded object is freed. A zspage that
empties is released, and its pages are added to ``pages_folded``. zram's
``compr_data_size`` does not change; ``mem_used_total`` does.

``variant="posted"`` compares what the posted code compares: ``class.size`` bytes starting
after the 8-byte handle header. That covers the payload, the slot's unused tail, and the
first 8 bytes of the next slot (a unique handle or a free-list link), so two objects fold
only if all of these match. That is far rarer than equal payloads. For the last slot of a
zspage, the model pads the bytes past the zspage's end with zeros. ``variant="corrected"``
compares exactly the payload: the bytes that were written, whose length the pool records at
``zs_malloc``. Objects fold only within a size class.

Model assumptions: when compaction moves a shared object, every handle that points at it is
repointed. When the handle written in an object's header is freed while other handles still
share the object, the header is rewritten to the remaining handle that joined the object
first (a node keeps its handles in the order they joined; the first is the header's).
``saved`` counts, per shared object, its payload length (the ``zs_malloc`` length of the
header's handle) once per extra handle.

Under zram, the write path is upstream's until objects are folded (compiled where upstream's
is); the fold, and the frees and overwrites after it, run compiled too
(``engine._offline_fast``) where nobody listens for events and the hash is one of
``engine.hashes``'s by name. The Python path is the reference. In array form the nodes are
arrays (``_foldarr``), and the payload lengths come from zram's slot table, which holds the
``zs_malloc`` length of every live handle (``ZramFoldDevice`` hands the pool that table).
"""
from __future__ import annotations

import struct
import weakref

import numpy as np

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash
from ..pages import PAGE_SIZE
from ..zram import ZRAM_SAME, ZramDevice
from ..zsmalloc import GROUP_EMPTY, GROUP_FULL, OBJ_ALLOCATED_TAG, ZS_HANDLE_SIZE, ZsPool
from . import events as dev
from .base import OfflineZramMechanism, register

FOLD_NODE_SIZE = 40         # struct fold_rbtree_node {rb_node 24, obj 8, cnt 4, pad 4}
RB_ROOT_SIZE = 8            # one rb_root per size class


class FoldNode:
    """The handles sharing one object, in the order they joined (the first is the one the
    object's header names), and their count."""

    __slots__ = ("cnt", "handles")

    def __init__(self, handles):
        self.handles = dict.fromkeys(handles)
        self.cnt = len(self.handles)


class _FoldArrays:
    """The fold nodes in array form (see ``engine._offline_fast``): per handle id its node and
    list links (FH), per node its count, first and last handle id (N), the free node ids
    (NF) and the scalars (FS)."""

    def __init__(self, rows: int):
        from .. import _offline_fast as O
        self.FH = np.full((rows, 3), -1, np.int64)
        self.N = np.zeros((rows, 3), np.int64)
        self.NF = np.zeros(rows, np.int64)
        self.FS = np.zeros(O.FS_COLS, np.int64)

    def fit(self, rows: int) -> None:
        if self.FH.shape[0] < rows:
            n = max(rows, 2 * self.FH.shape[0])
            FH = np.full((n, 3), -1, np.int64)
            FH[:self.FH.shape[0]] = self.FH
            N = np.zeros((n, 3), np.int64)
            N[:self.N.shape[0]] = self.N
            NF = np.zeros(n, np.int64)
            NF[:self.NF.shape[0]] = self.NF
            self.FH, self.N, self.NF = FH, N, NF

    def tup(self):
        return self.FH, self.N, self.NF, self.FS


class FoldingZsPool(ZsPool):
    """A zsmalloc pool with ``zs_fold``: several handles may share one object."""

    def __init__(self, *a, hash="xxhash64", variant="posted", work=None, mechanism="zsmalloc_fold", **kw):
        super().__init__(*a, **kw)
        self.hash_name, self.hash_fn = get_hash(hash)
        self.variant = variant
        self.work = work
        self.mechanism = mechanism
        self.nodes: dict[tuple[int, int], FoldNode] = {}    # (zspage id, obj idx) -> node
        self._loc_z: dict[int, object] = {}
        self.req_size: dict[int, int] = {}                   # handle -> zs_malloc size
        self.pages_folded = 0
        self.objs_folded = 0
        #: the nodes in array form while the pool is (None otherwise)
        self._foldarr = None
        #: () -> (handles, sizes) of the live handles, as uint64 and int64 arrays: who holds
        #: the ``zs_malloc`` lengths while the pool is in array form (zram's slot table)
        self.request_sizes = None

    #: absent in array form too (touching one converts the pool back)
    OBJECT_FORM_ATTRS = ZsPool.OBJECT_FORM_ATTRS + ("nodes", "req_size")

    # -- array form (zram's compiled paths) -----------------------------------------------------
    def enter_arrays(self, expect_pages: int = 0):
        if self.arrays is not None:
            return self.arrays
        if self.request_sizes is None:
            raise RuntimeError("zsmalloc fold: array form needs the holder of the request sizes")
        from .._zram_fast import HANDLE_BASE
        nodes = self.nodes
        pa = super().enter_arrays(expect_pages)
        fa = _FoldArrays(pa.H.shape[0])
        FH, N, FS = fa.FH, fa.N, fa.FS
        for nid, node in enumerate(nodes.values()):
            hids = [(h - HANDLE_BASE) >> 3 for h in node.handles]
            for k, hid in enumerate(hids):
                FH[hid] = (nid, hids[k + 1] if k + 1 < len(hids) else -1, hids[k - 1] if k else -1)
            N[nid] = (node.cnt, hids[0] if hids else -1, hids[-1] if hids else -1)
            FS[3] += node.cnt
        FS[0] = FS[2] = len(nodes)
        self._foldarr = fa
        return pa

    def leave_arrays(self) -> None:
        pa = self.arrays
        if pa is None:
            return
        from .._zram_fast import HANDLE_BASE, Z_ID
        fa, self._foldarr = self._foldarr, None
        found = []                                          # (zspage id, obj idx, handles)
        N, FH = fa.N, fa.FH
        live = np.flatnonzero(N[:fa.FS[0], 0] > 0)
        for nid in live.tolist():
            hids = []
            hid = int(N[nid, 1])
            while hid >= 0:
                hids.append(hid)
                hid = int(FH[hid, 1])
            zs, idx = pa.H[hids[0]]
            found.append((int(pa.Z[zs, Z_ID]), int(idx), [HANDLE_BASE + (h << 3) for h in hids]))
        super().leave_arrays()
        nodes = {}
        for zid, idx, handles in found:
            z, _ = self.location(handles[0])
            z.handles[idx] = handles[0]                     # the header's handle
            nodes[(zid, idx)] = FoldNode(handles)
        self.nodes = nodes
        h, sz = self.request_sizes()
        self.req_size = dict(zip(h.tolist(), sz.tolist()))

    def _foldarr_ready(self):
        fa = self._foldarr
        fa.fit(self.arrays.H.shape[0])
        return fa

    def _request_size_array(self):
        """The ``zs_malloc`` length of every live handle, by handle id."""
        from .._zram_fast import HANDLE_BASE
        h, sz = self.request_sizes()
        RS = np.zeros(self.arrays.H.shape[0], np.int64)
        RS[((h - np.uint64(HANDLE_BASE)) >> np.uint64(3)).astype(np.int64)] = sz
        return RS

    def fold_nodes(self) -> int:
        """Nodes (shared objects), in either form."""
        if self._foldarr is not None:
            return int(self._foldarr.FS[2])
        return len(self.nodes)

    def folded_handles(self) -> int:
        """Handles sharing another handle's object (per node, its handles less one)."""
        if self._foldarr is not None:
            return int(self._foldarr.FS[3] - self._foldarr.FS[2])
        return sum(n.cnt - 1 for n in self.nodes.values())

    def class_count(self) -> int:
        return len(self.size_classes())

    def malloc(self, size: int, data=None) -> int:
        h = super().malloc(size, data)
        self.req_size[h] = size
        return h

    def _compare_bytes(self, z, idx: int, handle: int) -> bytes:
        cls = z.cls
        off = idx * cls.size
        if cls.huge:
            return bytes(z.mem[off:off + cls.size])
        if self.variant == "posted":
            start = off + ZS_HANDLE_SIZE
            buf = bytes(z.mem[start:start + cls.size])
            return buf + bytes(cls.size - len(buf))
        start = off + ZS_HANDLE_SIZE
        return bytes(z.mem[start:start + self.req_size[handle]])

    def free(self, handle: int) -> None:
        z, idx = self.location(handle)
        node = self.nodes.get((z.id, idx))
        self.req_size.pop(handle, None)
        if node is not None:
            node.cnt -= 1
            del node.handles[handle]
            if node.cnt > 0:
                self.cache_free_handle(handle)
                if z.handles[idx] == handle:           # keep the header naming a live handle
                    other = next(iter(node.handles))     # the one that joined first
                    z.handles[idx] = other
                    if not z.cls.huge:
                        struct.pack_into("<Q", z.mem, idx * z.cls.size, other | OBJ_ALLOCATED_TAG)
                if self.bus.enabled:
                    self.bus.emit(dev.DedupRelease(self.mechanism, dev.LINK_HANDLE_OBJECT,
                                                   f"obj {z.encoded_obj(idx):#x}", node.cnt, False))
                return
            del self.nodes[(z.id, idx)]
            z.handles[idx] = handle
            if self.bus.enabled:
                self.bus.emit(dev.DedupRelease(self.mechanism, dev.LINK_HANDLE_OBJECT,
                                               f"obj {z.encoded_obj(idx):#x}", 0, True))
        super().free(handle)

    def obj_migrated(self, src, idx, dst, new_idx) -> None:
        node = self.nodes.pop((src.id, idx), None)
        if node is not None:
            self.nodes[(dst.id, new_idx)] = node
            for h in node.handles:
                self.record_obj(h, dst, new_idx)

    def fold(self) -> int:
        """``zs_fold``: fold identical objects in every class; return pages freed."""
        if self.arrays is not None and not self.bus.enabled:
            from .. import _offline_fast as O
            kind = O.HASH_KINDS.get(self.hash_name)
            from ..hashes import HASHES
            if kind is not None and HASHES.get(self.hash_name) is self.hash_fn:
                return self._fold_fast(kind)
        w = self.work
        listening = self.bus.enabled
        total = 0
        for cls in self.classes:
            if cls.objs_inuse == 0:
                continue
            nb = cls.objs_inuse
            buckets: dict[int, list] = {}
            order = [z for g in range(GROUP_EMPTY + 1, GROUP_FULL + 1) for z in reversed(list(cls.fullness[g]))]
            freed = 0
            for z in order:
                del cls.fullness[z.group][z]                  # isolate while folding
                for idx in range(cls.objs_per_zspage):
                    h = z.handles[idx]
                    if not h:
                        continue
                    buf = self._compare_bytes(z, idx, h)
                    hv = self.hash_fn(buf)
                    if w is not None:
                        w.pages_hashed += 1
                        w.bytes_hashed += len(buf)
                    if listening:
                        self.bus.emit(dev.DedupHash(self.mechanism, "zsmalloc slot" if self.variant == "posted"
                                                    else "compressed object", self.hash_name, len(buf),
                                                    dev.WHEN_OFFLINE, hv))
                    lst = buckets.setdefault(hv % nb, [])
                    folded = False
                    for cz, cidx, cbuf in lst:
                        if w is not None:
                            w.compares += 1
                            w.bytes_compared += len(buf)
                        equal = cbuf == buf
                        if listening:
                            self.bus.emit(dev.DedupCompare(self.mechanism, "full compare",
                                                           "zsmalloc slot" if self.variant == "posted"
                                                           else "compressed object", len(buf), equal))
                        if equal:
                            self._fold_into(z, idx, h, cz, cidx)
                            folded = True
                            break
                    if not folded:
                        lst.insert(0, (z, idx, buf))
                if self.putback_zspage(z) == GROUP_EMPTY:
                    self.free_zspage(z, "fold")
                    freed += cls.pages_per_zspage
            total += freed
        self.pages_folded += total
        return total

    def _fold_fast(self, kind: int) -> int:
        from .. import _offline_fast as O
        from .._zram_fast import C_INUSE, P_PAGES
        pa = self.arrays
        fa = self._foldarr_ready()
        classes = np.array([c.index for c in self.size_classes()], np.int64)
        live = max(1, int(pa.C[:, C_INUSE].max()))                  # the most objects in use in one class
        W = np.zeros(O.W_COLS, np.int64)
        out = np.zeros(2, np.int64)
        try:
            O.fold_pass(pa.tup(), fa.FH, fa.N, fa.NF, fa.FS, self._request_size_array(), classes,
                        self.variant == "posted", kind, W, np.empty(live, np.int64), np.empty(live, np.int64),
                        np.empty(live, np.int64), np.empty(live, np.int64), np.empty(live, np.int64),
                        np.empty(live, np.int64), np.empty(pa.Z.shape[0], np.int64),
                        np.empty(2 * PAGE_SIZE, np.uint8), np.empty(2 * PAGE_SIZE, np.uint8), out)
        finally:
            self.pages_allocated = int(pa.P[P_PAGES])
            w = self.work
            if w is not None:
                w.pages_hashed += int(W[O.W_HASHED])
                w.bytes_hashed += int(W[O.W_HASHED_BYTES])
                w.compares += int(W[O.W_COMPARES])
                w.bytes_compared += int(W[O.W_COMPARED_BYTES])
        self.objs_folded += int(out[1])
        self.pages_folded += int(out[0])
        return int(out[0])

    def _fold_into(self, z, idx: int, h: int, cz, cidx: int) -> None:
        key = (cz.id, cidx)
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = FoldNode((cz.handles[cidx], h))
        else:
            node.handles[h] = None
            node.cnt += 1
        self.record_obj(h, cz, cidx)
        own = self.nodes.get((z.id, idx))
        if own is not None:
            own.cnt -= 1
            del own.handles[h]
            if own.cnt == 0:
                del self.nodes[(z.id, idx)]
                self.obj_free(z, idx)
                z.cls.objs_inuse -= 1
            else:
                other = next(iter(own.handles))
                z.handles[idx] = other
                if not z.cls.huge:
                    struct.pack_into("<Q", z.mem, idx * z.cls.size, other | OBJ_ALLOCATED_TAG)
        else:
            self.obj_free(z, idx)
            z.cls.objs_inuse -= 1
        self.objs_folded += 1
        if self.bus.enabled:
            self.bus.emit(dev.DedupShare(self.mechanism, dev.LINK_HANDLE_OBJECT, f"handle {h:#x}",
                                         f"obj {cz.encoded_obj(cidx):#x}", node.cnt))

    def expected_handles(self) -> int:
        return super().expected_handles() + sum(n.cnt - 1 for n in self.nodes.values())

    def saved(self) -> int:
        """Bytes of objects not stored thanks to folding: per shared object, its payload length
        (the header's handle's) once per extra handle."""
        if self._foldarr is not None:
            from .. import _offline_fast as O
            fa = self._foldarr_ready()
            return int(O.fold_saved(self.arrays.tup(), fa.FH, fa.N, fa.FS, self._request_size_array()))
        total = 0
        for node in self.nodes.values():
            h = next(iter(node.handles))
            total += (node.cnt - 1) * self.req_size.get(h, 0)
        return total


class ZramFoldDevice(ZramDevice):
    """zram over a folding pool. Its compiled paths (write, free, read, fold) stand in for the
    folding pool's methods: an overwritten or freed slot's handle may share its object."""

    #: the pool class the compiled path stands in for
    COMPILED_POOLS = (FoldingZsPool,)

    def __init__(self, disksize, algo=DEFAULT_COMPRESSOR, mem_limit=0, bus=None, hash="xxhash64", variant="posted",
                 work=None):
        super().__init__(disksize, algo, mem_limit, bus)
        self.pool = FoldingZsPool("zram", bus=self.bus, hash=hash, variant=variant, work=work)
        ref = weakref.ref(self)
        self.pool.request_sizes = lambda: ref()._request_sizes()

    def _request_sizes(self):
        """(handle, size) of every slot holding an object: zram keeps the ``zs_malloc`` length
        of each live handle in its slot."""
        slots = self.slot_arrays
        if slots is not None:
            zh, zsz = slots[0], slots[1]
        else:
            zh, zsz = np.array(self.handle, np.uint64), np.array(self.size, np.int64)
        fl = np.frombuffer(self.flags, np.uint8)
        live = (zsz > 0) & ((fl & ZRAM_SAME) == 0)
        return zh[live], zsz[live]

    def fold(self) -> int:
        if self.compiled_eligible():
            self.enter_arrays(self.num_pages)           # the compiled fold runs on the array form
        return self.pool.fold()

    def compiled_store_batch(self, chunk, b, idx, start, io_end, use_io, D, failed_out, skipped_out) -> None:
        fa = self.pool._foldarr
        if fa is None or not fa.FS[2]:                 # nothing folded: upstream's store loop
            return super().compiled_store_batch(chunk, b, idx, start, io_end, use_io, D, failed_out, skipped_out)
        from .. import _offline_fast as O
        k = chunk.shape[0]
        self.comp.compressions += k - int(np.count_nonzero(b.sflags[:k]))
        zh, zsz = self.slot_arrays
        zf = np.frombuffer(self.flags, np.uint8)
        pool = self.pool
        pa = pool.arrays

        def step(j):
            fa = pool._foldarr_ready()
            return O.fold_store_batch(pa.tup(), chunk, b.out, b.lengths, b.sflags, b.fills, idx, start, j, io_end,
                                      use_io, zf, zh, zsz, D, failed_out, skipped_out, fa.FH, fa.N, fa.NF, fa.FS)
        self.compiled_store_loop(step, k, idx, start)

    def compiled_free_slots(self, indexes) -> bool:
        fa = self.pool._foldarr
        if fa is None or not fa.FS[2] or self.slot_arrays is None or not self.compiled_eligible():
            return super().compiled_free_slots(indexes)
        from .. import _offline_fast as O
        fa = self.pool._foldarr_ready()
        with self.array_state() as a:
            O.fold_free_slots(a.pool.tup(), a.flags, a.handle, a.size, a.stats, fa.FH, fa.N, fa.NF, fa.FS,
                              np.asarray(indexes, np.int64).reshape(-1))
        return True

    def mm_stat(self) -> dict:
        d = super().mm_stat()
        d["pages_folded"] = self.pool.pages_folded
        return d


@register
class ZsmallocFold(OfflineZramMechanism):
    name = "zsmalloc_fold"
    title = "zsmalloc object fold (Alexey Romanov, RFC 2023)"
    link = dev.LINK_HANDLE_OBJECT
    when = dev.WHEN_OFFLINE
    hashes = "each object's bytes in its size class, XXH64, on the fold trigger"
    identity = "hash bucket, then memcmp of the compared bytes (posted: slot after the header, tail included)"
    metadata = f"fold tree node {FOLD_NODE_SIZE} B per shared object + {RB_ROOT_SIZE} B rb_root per size class"
    source = "LKML 18 Apr 2023, Message-ID 20230418062503.62121-1-avromanov@sberdevices.ru"
    kind = "design"
    date = "2023-04-18"
    reference = "romanov-fold-2023"
    summary = "offline zsmalloc fold: identical objects behind distinct handles folded into one object"

    device_class = ZramFoldDevice
    offline_step = "fold"

    def saved_bytes(self) -> int:
        return self.device.pool.saved()

    def metadata_bytes(self) -> int:
        pool = self.device.pool
        return pool.fold_nodes() * FOLD_NODE_SIZE + pool.class_count() * RB_ROOT_SIZE

    def pages_merged(self) -> int:
        return self.device.pool.folded_handles()
