"""Typed engine events: the evidence that claim charts cite.

Every step of the engine can report what it did as a small frozen dataclass with a stable
``kind`` name (``"<layer>.<what>"``). Names are part of the public contract: claim charts bind
evidence to them and ``pagemerge claims check`` rejects names that are not in
:data:`EVENT_TYPES`. Never rename one; add a new one instead.

Events are cheap when nobody listens: producers test ``bus.enabled`` (a plain attribute)
before building an event object, so a run without listeners builds none.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import ClassVar

EVENT_TYPES: dict[str, type["Event"]] = {}


def event(cls):
    """Class decorator: make ``cls`` a frozen, slotted dataclass and register its kind."""
    cls = dataclass(frozen=True, slots=True)(cls)
    if cls.kind in EVENT_TYPES:
        raise TypeError(f"duplicate event kind {cls.kind}")
    EVENT_TYPES[cls.kind] = cls
    return cls


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"
    #: one-line description used in docs and reports
    doc: ClassVar[str] = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind
        return d


# ---- zram (drivers/block/zram) -------------------------------------------------------------
@event
class SlotWritten(Event):
    kind: ClassVar[str] = "zram.slot_written"
    doc: ClassVar[str] = "a page was stored in a zram slot (flag: same, huge or normal; size: object bytes)"
    index: int
    flag: str
    size: int
    handle: int


@event
class SameFilledDetected(Event):
    kind: ClassVar[str] = "zram.same_filled"
    doc: ClassVar[str] = "the page's 512 8-byte words are all equal; only the fill word is kept, no allocation"
    index: int
    fill: int


@event
class PageCompressed(Event):
    kind: ClassVar[str] = "zram.compressed"
    doc: ClassVar[str] = "the page was compressed (algorithm, compressed length, whether it will be stored huge)"
    index: int
    algorithm: str
    length: int
    huge: bool
    cached: bool


@event
class SlotFreed(Event):
    kind: ClassVar[str] = "zram.slot_freed"
    doc: ClassVar[str] = "a slot's content was released (reason: overwrite, discard, reset)"
    index: int
    reason: str
    flag: str
    size: int


@event
class WriteFailed(Event):
    kind: ClassVar[str] = "zram.write_failed"
    doc: ClassVar[str] = "a store was refused (mem_limit reached); the slot keeps its old content"
    index: int
    reason: str
    pool_pages: int


@event
class SlotRead(Event):
    kind: ClassVar[str] = "zram.slot_read"
    doc: ClassVar[str] = "a slot was read back (decompressed unless same-filled or huge)"
    index: int
    flag: str


# ---- zsmalloc (mm/zsmalloc.c) --------------------------------------------------------------
@event
class ObjectAllocated(Event):
    kind: ClassVar[str] = "zsmalloc.obj_alloc"
    doc: ClassVar[str] = "zs_malloc: an object of a size class was allocated and a handle returned"
    handle: int
    size: int
    class_index: int
    class_size: int
    zspage: int
    obj_idx: int


@event
class ObjectFreed(Event):
    kind: ClassVar[str] = "zsmalloc.obj_free"
    doc: ClassVar[str] = "zs_free: an object was released and its handle freed"
    handle: int
    class_index: int
    zspage: int
    obj_idx: int


@event
class ZspageAllocated(Event):
    kind: ClassVar[str] = "zsmalloc.zspage_alloc"
    doc: ClassVar[str] = "a new zspage (pages_per_zspage pages) was added to a size class"
    zspage: int
    class_index: int
    pages: int


@event
class ZspageFreed(Event):
    kind: ClassVar[str] = "zsmalloc.zspage_free"
    doc: ClassVar[str] = "an empty zspage was returned (reason: free or compact)"
    zspage: int
    class_index: int
    pages: int
    reason: str


@event
class ObjectMigrated(Event):
    kind: ClassVar[str] = "zsmalloc.obj_migrate"
    doc: ClassVar[str] = "compaction moved an object to another zspage; its handle was repointed (handle -> object)"
    handle: int
    class_index: int
    src_zspage: int
    dst_zspage: int


@event
class Compacted(Event):
    kind: ClassVar[str] = "zsmalloc.compacted"
    doc: ClassVar[str] = "zs_compact finished a class: pages freed by migrating objects out of sparse zspages"
    class_index: int
    pages_freed: int


class EventBus:
    """Fan-out of events to listeners. ``enabled`` is False while nobody listens."""

    __slots__ = ("_listeners", "enabled")

    def __init__(self):
        self._listeners: list[Callable[[Event], None]] = []
        self.enabled = False

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        self.enabled = True

        def unsubscribe():
            self._listeners.remove(listener)
            self.enabled = bool(self._listeners)
        return unsubscribe

    def emit(self, event: Event) -> None:
        for cb in self._listeners:
            cb(event)


@dataclass
class Recorder:
    """A listener that keeps every event (or only counts them, with ``keep=False``)."""

    keep: bool = True
    events: list[Event] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def __call__(self, event: Event) -> None:
        self.counts[event.kind] += 1
        if self.keep:
            self.events.append(event)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def frame(self, kinds=None):
        """The kept events as a pandas DataFrame (one row per event, a column per field)."""
        import pandas as pd
        rows = [e.to_dict() for e in self.events if kinds is None or e.kind in kinds]
        return pd.DataFrame(rows)


def all_event_types() -> dict[str, type[Event]]:
    """Every event kind the engine emits: imports the modules that declare their own events
    (memory model, swap, KSM, mechanisms) so the registry is complete."""
    import importlib
    for mod in ("engine.mm", "engine.swap", "engine.ksm", "engine.mechanisms"):
        importlib.import_module(mod)
    return EVENT_TYPES


def event_catalogue() -> list[dict]:
    """Every event kind the engine emits, with its fields and meaning (for docs and checks)."""
    all_event_types()
    out = []
    for kind, cls in sorted(EVENT_TYPES.items()):
        out.append({"kind": kind, "doc": cls.doc,
                    "fields": [f for f in cls.__dataclass_fields__ if f not in ("kind", "doc")]})
    return out


def events_markdown(cat: list[dict] | None = None) -> str:
    """The event catalogue as the Markdown table of ``docs/events.md``."""
    cat = event_catalogue() if cat is None else cat
    out = ["# Engine events", "",
           "Every event kind the engine emits. The names are stable: claim charts bind evidence to them,",
           "and `pagemerge claims check` rejects any other name. This file is generated by",
           "`pagemerge events --markdown`, and a test keeps it in step with the code.", "",
           "| kind | meaning | fields |", "|---|---|---|"]
    for e in cat:
        out.append(f"| `{e['kind']}` | {e['doc']} | {', '.join(e['fields'])} |")
    return "\n".join(out) + "\n"

