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
        """Read and check a manifest: a regular file of bounded size (see
        :func:`engine.fileio.read_input`) holding a JSON object of the shape :meth:`to_json`
        writes. Anything else is one line naming the file and the first field that is wrong."""
        p = Path(path)
        from ..fileio import read_input
        try:
            d = json.loads(read_input(p, "manifest"))
        except UnicodeDecodeError as e:
            raise InputError(f"{p}: manifest is not UTF-8 text (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: malformed manifest JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        except (ValueError, RecursionError) as e:
            raise InputError(f"{p}: malformed manifest JSON ({type(e).__name__}: {str(e)[:80]})") from None
        return cls.from_json(d, p, n_pages)

    @classmethod
    def from_json(cls, d, p: Path | str = "manifest", n_pages: int | None = None) -> "Manifest":
        """A manifest from its decoded JSON, every field checked for type and range."""
        def bad(field: str, problem: str):
            return InputError(f"{p}: malformed manifest: {field}: {problem}")

        if not isinstance(d, dict):
            raise InputError(f"{p}: malformed manifest (expected a JSON object, got {_jtype(d)})")
        if d.get("version") != MANIFEST_VERSION:
            raise InputError(f"{p}: unsupported manifest version {str(d.get('version'))[:20]!r}")
        if d.get("page_size", 4096) != 4096:
            raise bad("page_size", f"must be 4096, got {str(d.get('page_size'))[:20]}")
        source = d.get("source", "")
        if not isinstance(source, str):
            raise bad("source", f"expected a string, got {_jtype(source)}")
        notes = d.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(x, str) for x in notes):
            raise bad("notes", "expected a list of strings")
        procs = d.get("processes", [])
        if not isinstance(procs, list):
            raise bad("processes", f"expected a list of objects, got {_jtype(procs)}")
        for i, pr in enumerate(procs):
            if not isinstance(pr, dict):
                raise bad(f"processes[{i}]", f"expected an object, got {_jtype(pr)}")
            if not _is_pid(pr.get("pid")):
                raise bad(f"processes[{i}].pid", f"expected a process id (0 to {PID_MAX}), got "
                                                 f"{str(pr.get('pid'))[:20]!r}")
            for k in ("comm", "cmdline"):
                if not isinstance(pr.get(k, ""), str):
                    raise bad(f"processes[{i}].{k}", f"expected a string, got {_jtype(pr.get(k))}")
            if "pages" in pr and not (_is_int(pr["pages"]) and pr["pages"] >= 0):
                raise bad(f"processes[{i}].pages", "expected a whole number of pages")
        pg = d.get("pages")
        if not isinstance(pg, dict):
            raise bad("pages", f"expected an object of columns (pid, vaddr, region), got {_jtype(pg)}")
        cols = {}
        for k in ("pid", "vaddr", "region") + (("comm",) if "comm" in pg else ()):
            if k not in pg:
                raise bad(f"pages.{k}", "missing (one entry per page)")
            if not isinstance(pg[k], list):
                raise bad(f"pages.{k}", f"expected a list (one entry per page), got {_jtype(pg[k])}")
            cols[k] = pg[k]
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"{p}: manifest columns have different lengths "
                             f"({', '.join(f'{k} {n}' for k, n in lengths.items())})")
        if n_pages is not None and lengths["pid"] != n_pages:
            raise InputError(f"{p}: manifest lists {lengths['pid']} pages but its page file has {n_pages}")
        for i, x in enumerate(cols["pid"]):
            if not _is_pid(x):
                raise bad(f"pages.pid[{i}]", f"expected a process id (0 to {PID_MAX}), got {str(x)[:20]!r}")
        vaddr = []
        seen = set()
        for i, x in enumerate(cols["vaddr"]):
            v = _hex_address(x)
            if v is None:
                raise bad(f"pages.vaddr[{i}]", f"expected a page-aligned hexadecimal address like "
                                               f"\"0x7f0000000000\", got {str(x)[:24]!r}")
            key = (cols["pid"][i], v)
            if key in seen:
                raise bad(f"pages.vaddr[{i}]", f"pid {key[0]} has two pages at {v:#x}")
            seen.add(key)
            vaddr.append(v)
        for k in ("region", "comm"):
            for i, x in enumerate(cols.get(k, ())):
                if not isinstance(x, str):
                    raise bad(f"pages.{k}[{i}]", f"expected a string, got {_jtype(x)}")
        return cls(source=source, processes=procs, pid=list(cols["pid"]), vaddr=vaddr,
                   region=list(cols["region"]), notes=notes)


#: process ids in a manifest (live pids, or a core's pid from its note): 0 to 2^31 - 1
PID_MAX = (1 << 31) - 1


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_pid(x) -> bool:
    return _is_int(x) and 0 <= x <= PID_MAX


def _hex_address(x) -> int | None:
    """A user address written ``0x...`` (at most 16 hex digits, page aligned), else None."""
    if not isinstance(x, str) or not x[:2] in ("0x", "0X") or not 3 <= len(x) <= 18:
        return None
    try:
        v = int(x[2:], 16)
    except ValueError:
        return None
    if not x[2:].isascii() or not x[2:].isalnum() or v % 4096:
        return None
    return v


def _jtype(x) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(x), type(x).__name__)


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

