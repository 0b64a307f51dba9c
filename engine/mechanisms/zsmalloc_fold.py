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
share the object, the header is rewritten to one of the remaining handles.
"""
from __future__ import annotations

import struct

from ..compress import DEFAULT_COMPRESSOR
from ..hashes import get_hash
from ..zram import ZramDevice
from ..zsmalloc import GROUP_EMPTY, GROUP_FULL, OBJ_ALLOCATED_TAG, ZS_HANDLE_SIZE, ZsPool
from . import events as dev
from .base import OfflineZramMechanism, register

FOLD_NODE_SIZE = 40         # struct fold_rbtree_node {rb_node 24, obj 8, cnt 4, pad 4}
RB_ROOT_SIZE = 8            # one rb_root per size class


class FoldNode:
    __slots__ = ("cnt", "handles")

    def __init__(self, handles):
        self.handles = set(handles)
        self.cnt = len(self.handles)


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
        z, idx = self._handles[handle]
        node = self.nodes.get((z.id, idx))
        self.req_size.pop(handle, None)
        if node is not None:
            node.cnt -= 1
            node.handles.discard(handle)
            if node.cnt > 0:
                del self._handles[handle]
                self._free_handles.append(handle)
                if z.handles[idx] == handle:           # keep the header naming a live handle
                    other = next(iter(node.handles))
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

    def _after_move(self, src, idx, dst, new_idx) -> None:
        node = self.nodes.pop((src.id, idx), None)
        if node is not None:
            self.nodes[(dst.id, new_idx)] = node
            for h in node.handles:
                self._handles[h] = (dst, new_idx)

    def fold(self) -> int:
        """``zs_fold``: fold identical objects in every class; return pages freed."""
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
                if self._putback(z) == GROUP_EMPTY:
                    self._free_zspage(z, "fold")
                    freed += cls.pages_per_zspage
            total += freed
        self.pages_folded += total
        return total

    def _fold_into(self, z, idx: int, h: int, cz, cidx: int) -> None:
        key = (cz.id, cidx)
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = FoldNode({cz.handles[cidx], h})
        else:
            node.handles.add(h)
            node.cnt += 1
        self._handles[h] = (cz, cidx)
        own = self.nodes.get((z.id, idx))
        if own is not None:
            own.cnt -= 1
            own.handles.discard(h)
            if own.cnt == 0:
                del self.nodes[(z.id, idx)]
                self._obj_free(z, idx)
                z.cls.objs_inuse -= 1
            else:
                other = next(iter(own.handles))
                z.handles[idx] = other
                if not z.cls.huge:
                    struct.pack_into("<Q", z.mem, idx * z.cls.size, other | OBJ_ALLOCATED_TAG)
        else:
            self._obj_free(z, idx)
            z.cls.objs_inuse -= 1
        self.objs_folded += 1
        if self.bus.enabled:
            self.bus.emit(dev.DedupShare(self.mechanism, dev.LINK_HANDLE_OBJECT, f"handle {h:#x}",
                                         f"obj {cz.encoded_obj(cidx):#x}", node.cnt))

    def _expected_handles(self) -> int:
        return super()._expected_handles() + sum(n.cnt - 1 for n in self.nodes.values())

    def saved(self) -> int:
        """Bytes of objects not stored thanks to folding (payload bytes of the extra sharers)."""
        total = 0
        for node in self.nodes.values():
            h = next(iter(node.handles))
            total += (node.cnt - 1) * self.req_size.get(h, 0)
        return total


class ZramFoldDevice(ZramDevice):
    def __init__(self, disksize, algo=DEFAULT_COMPRESSOR, mem_limit=0, bus=None, hash="xxhash64", variant="posted",
                 work=None):
        super().__init__(disksize, algo, mem_limit, bus)
        self.pool = FoldingZsPool("zram", bus=self.bus, hash=hash, variant=variant, work=work)

    def fold(self) -> int:
        return self.pool.fold()

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
        return len(self.device.pool.nodes) * FOLD_NODE_SIZE + len(self.device.pool.classes) * RB_ROOT_SIZE

    def pages_merged(self) -> int:
        return sum(n.cnt - 1 for n in self.device.pool.nodes.values())
