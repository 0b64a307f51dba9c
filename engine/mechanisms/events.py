"""Events every dedup mechanism emits in the same vocabulary, so claim charts can cite them.

* ``dedup.hash``: something was hashed. Fields: what (``uncompressed page``,
  ``compressed object``, ``zsmalloc slot``), which function, how many bytes, and when
  (``inline on store``, ``offline trigger``, ``background scan``, ``on swap-out``).
* ``dedup.compare``: a candidate was checked. Fields: how identity was established
  (``full compare`` or ``hash only``), of what, how many bytes, and whether they were equal.
* ``dedup.share``: a link of the chain was repointed to shared data. Fields: the link
  (``PTE -> page frame``, ``slot -> handle``, ``handle -> object``,
  ``virtual address -> stored page``), the target, and its reference count afterwards.
* ``dedup.release``: a reference to shared data was dropped. Fields: the link, the target,
  the count afterwards, and whether the data was freed.

KSM also emits its own ``ksm.*`` events (engine.ksm), zram its ``zram.*`` events, and zsmalloc
its ``zsmalloc.*`` events.
"""
from __future__ import annotations

from typing import ClassVar

from ..events import Event, event

LINK_PTE = "PTE -> page frame"
LINK_SLOT_HANDLE = "slot -> handle"
LINK_HANDLE_OBJECT = "handle -> object"
LINK_VA_STORED = "virtual address -> stored page"
LINK_NONE = "none"
LINKS = (LINK_PTE, LINK_SLOT_HANDLE, LINK_HANDLE_OBJECT, LINK_VA_STORED)

WHEN_INLINE = "inline on store"
WHEN_OFFLINE = "offline trigger"
WHEN_SCAN = "background scan"
WHEN_SWAPOUT = "on swap-out"


@event
class DedupHash(Event):
    kind: ClassVar[str] = "dedup.hash"
    doc: ClassVar[str] = "a mechanism hashed data: what (uncompressed page, compressed object, zsmalloc slot), function, bytes, when"
    mechanism: str
    what: str
    function: str
    nbytes: int
    when: str
    value: int


@event
class DedupCompare(Event):
    kind: ClassVar[str] = "dedup.compare"
    doc: ClassVar[str] = "a candidate was checked: by full compare or by hash only, of what, how many bytes, equal or not"
    mechanism: str
    method: str
    of: str
    nbytes: int
    equal: bool


@event
class DedupShare(Event):
    kind: ClassVar[str] = "dedup.share"
    doc: ClassVar[str] = "a link of the chain was repointed to shared data (link, target, refcount after)"
    mechanism: str
    link: str
    source: str
    target: str
    refcount: int


@event
class DedupRelease(Event):
    kind: ClassVar[str] = "dedup.release"
    doc: ClassVar[str] = "a reference to shared data was dropped (link, target, refcount after, freed or kept)"
    mechanism: str
    link: str
    target: str
    refcount: int
    freed: bool
