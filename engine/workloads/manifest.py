"""The manifest that travels beside a page-set file: where each page came from.

``NAME.pages`` holds the raw pages; ``NAME.pages.json`` holds, column-wise (one entry per
page, in page order), the process id, the process name, the virtual address and the region
name, plus a table of the processes. The address-space model uses it to place each page at
its process and address.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

MANIFEST_VERSION = 1


def manifest_path(pages_path: str | os.PathLike) -> Path:
    return Path(str(pages_path) + ".json")


@dataclass
class Manifest:
    source: str = ""
    processes: list[dict] = field(default_factory=list)   # {pid, comm, cmdline}
    pid: list[int] = field(default_factory=list)
    vaddr: list[int] = field(default_factory=list)
    region: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self):
        return len(self.pid)

    def comm_of(self, pid: int) -> str:
        for p in self.processes:
            if p["pid"] == pid:
                return p.get("comm", "")
        return ""

    def to_json(self) -> dict:
        comms = {p["pid"]: p.get("comm", "") for p in self.processes}
        return {"version": MANIFEST_VERSION, "page_size": 4096, "source": self.source,
                "processes": self.processes, "notes": self.notes,
                "pages": {"pid": self.pid, "comm": [comms.get(p, "") for p in self.pid],
                          "vaddr": [f"{v:#x}" for v in self.vaddr], "region": self.region}}

    @classmethod
    def load(cls, path: str | os.PathLike, n_pages: int | None = None) -> "Manifest":
        p = Path(path)
        from ..fileio import read_input
        try:
            d = json.loads(read_input(p, "manifest"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{p}: malformed manifest JSON ({e})") from None
        if not isinstance(d, dict):
            raise InputError(f"{p}: malformed manifest (expected a JSON object)")
        try:
            if d.get("version") != MANIFEST_VERSION:
                raise InputError(f"{p}: unsupported manifest version {d.get('version')!r}")
            pg = d["pages"]
            m = cls(source=d.get("source", ""), processes=d.get("processes", []),
                    pid=[int(x) for x in pg["pid"]], vaddr=[int(x, 16) for x in pg["vaddr"]],
                    region=[str(x) for x in pg["region"]], notes=d.get("notes", []))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"{p}: malformed manifest ({type(e).__name__}: {e})") from None
        if not (len(m.pid) == len(m.vaddr) == len(m.region)):
            raise InputError(f"{p}: manifest columns have different lengths")
        if n_pages is not None and len(m) != n_pages:
            raise InputError(f"{p}: manifest lists {len(m)} pages but its page file has {n_pages}")
        return m


def resolve_manifest(pages_path: str | os.PathLike, n_pages: int, manifest: str | os.PathLike | None = None,
                     no_manifest: bool = False) -> "Manifest | None":
    """The manifest for a page set: ``manifest`` when given, else ``PAGES.json`` beside the
    page set when it exists (unless ``no_manifest``), else None (one process)."""
    if manifest and no_manifest:
        raise InputError("--manifest and --no-manifest exclude each other")
    if manifest:
        return Manifest.load(manifest, n_pages)
    if not no_manifest and os.path.lexists(manifest_path(pages_path)):
        return Manifest.load(manifest_path(pages_path), n_pages)
    return None

