"""Read ELF core dumps (``gcore``, kernel core files) as a page set plus manifest.

Every ``PT_LOAD`` segment that has file contents becomes pages at its virtual addresses.
The process id and name come from the ``NT_PRPSINFO`` note. Region names come from the
``NT_FILE`` note (the file mapped at an address), and anything else is ``[anon]``. With
``anon_only`` only segments that no ``NT_FILE`` entry covers are kept. The core is
memory-mapped and the pages are written out in a stream, so large cores need bounded memory.
A truncated segment is kept up to its last whole page and reported. A file that is not a
64-bit little-endian ELF core is refused with one line naming the problem.

Everything the file says about sizes is checked against the file's real size before it is
used, so a crafted core cannot make the reader spin or the output grow:

* the program headers must lie inside the file (so their number is at most size / 56);
* notes are read only inside the file, the ``PT_NOTE`` segments together at most the file's
  size, and an ``NT_FILE`` note's entry count at most what its descriptor can hold (24 bytes
  an entry);
* ``PT_LOAD`` segments whose bytes in the file overlap (or whose addresses overlap) are
  refused: a real core never stores a byte twice, and writing every copy would let a small
  file (20,000 headers pointing at one page) become a page set thousands of times its size.
  So the pages written are distinct bytes of the file: the output is never larger than the
  core.
"""
from __future__ import annotations

import mmap
import os
import struct
from bisect import bisect_right
from dataclasses import dataclass

from ..errors import InputError
from ..pages import PAGE_SIZE
from .manifest import Manifest

ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
NT_PRPSINFO = 3
NT_FILE = 0x46494C45
PN_XNUM = 0xFFFF
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")


@dataclass
class Segment:
    vaddr: int
    offset: int
    filesz: int
    memsz: int


@dataclass
class CoreInfo:
    path: str
    pid: int
    comm: str
    args: str
    segments: list[Segment]
    files: list[tuple[int, int, str]]        # (start, end, filename) from NT_FILE


_NT_FILE_ENTRY = 24


def _notes(buf, off: int, size: int):
    """The notes in ``buf[off:off + size]`` (already clipped to the file); a note whose name
    or descriptor runs past the segment ends the walk."""
    end = off + size
    while off + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", buf, off)
        off += 12
        if off + namesz > end:
            return
        name = bytes(buf[off:off + namesz]).rstrip(b"\0")
        off += (namesz + 3) & ~3
        if off + descsz > end:
            return
        desc = bytes(buf[off:off + descsz])
        off += (descsz + 3) & ~3
        yield name, ntype, desc


def _nt_file(path: str, desc: bytes) -> list[tuple[int, int, str]]:
    """The ``NT_FILE`` note: count, page size, ``count`` (start, end, offset) triples, then
    ``count`` NUL-terminated names. The count is checked against the descriptor's length
    before anything is read, so a note claiming 2^40 entries is refused at once."""
    count, _pgsz = struct.unpack_from("<QQ", desc, 0)
    room = (len(desc) - 16) // _NT_FILE_ENTRY
    if count > room:
        raise InputError(f"{path}: NT_FILE note claims {count} mapped files but its {len(desc)} bytes hold "
                         f"at most {room}")
    ents = struct.iter_unpack("<QQQ", desc[16:16 + _NT_FILE_ENTRY * count])
    names = desc[16 + _NT_FILE_ENTRY * count:].split(b"\0", count)
    return [(s, e, n.decode(errors="replace")) for (s, e, _o), n in zip(ents, names)]


def _check_loads(path: str, segs: list[Segment], size: int) -> None:
    """Refuse ``PT_LOAD`` segments that share bytes of the file or addresses: see the module
    docstring. Only the part of a segment inside the file counts (a truncated core keeps its
    whole pages)."""
    spans = sorted((s.offset, min(s.offset + s.filesz, size), k) for k, s in enumerate(segs)
                   if s.filesz and s.offset < size)
    for (a0, a1, i), (b0, _b1, j) in zip(spans, spans[1:]):
        if b0 < a1:
            raise InputError(f"{path}: PT_LOAD segments {i} and {j} overlap in the file (offsets {a0:#x}-{a1:#x} "
                             f"and {b0:#x}); a core stores each byte once, refusing a damaged or crafted file")
    addrs = sorted((s.vaddr, s.vaddr + s.filesz, k) for k, s in enumerate(segs) if s.filesz)
    for (a0, a1, i), (b0, _b1, j) in zip(addrs, addrs[1:]):
        if b0 < a1:
            raise InputError(f"{path}: PT_LOAD segments {i} and {j} overlap in memory (addresses {a0:#x}-{a1:#x} "
                             f"and {b0:#x}); refusing a damaged or crafted core")
    for k, s in enumerate(segs):
        if s.vaddr + s.filesz > 1 << 64:
            raise InputError(f"{path}: PT_LOAD segment {k} ends past the 64-bit address space")


def read_core_info(path: str, buf) -> CoreInfo:
    size = len(buf)
    if size < _EHDR.size or bytes(buf[:4]) != b"\x7fELF":
        raise InputError(f"{path}: not an ELF file (no ELF magic)")
    ident = bytes(buf[:16])
    if ident[4] != 2 or ident[5] != 1:
        raise InputError(f"{path}: only 64-bit little-endian ELF cores are supported")
    (_id, e_type, _mach, _ver, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize,
     _shnum, _shstrndx) = _EHDR.unpack_from(buf, 0)
    if e_type != ET_CORE:
        raise InputError(f"{path}: an ELF file but not a core dump (e_type {e_type})")
    if phnum == PN_XNUM:                                     # real count in section header 0
        if shoff + 64 > size:
            raise InputError(f"{path}: truncated ELF core (section header missing)")
        phnum = struct.unpack_from("<I", buf, shoff + 44)[0]
    if phentsize != _PHDR.size or phoff + phnum * phentsize > size:
        raise InputError(f"{path}: truncated ELF core (program headers end past the file)")
    segs, files = [], []
    pid, comm, args = 0, "", ""
    note_bytes = 0
    for i in range(phnum):
        p_type, _pf, p_offset, p_vaddr, _pa, p_filesz, p_memsz, _al = _PHDR.unpack_from(buf, phoff + i * phentsize)
        if p_type == PT_LOAD:
            segs.append(Segment(p_vaddr, p_offset, p_filesz, p_memsz))
        elif p_type == PT_NOTE and p_offset < size:
            span = min(p_filesz, size - p_offset)
            note_bytes += span
            if note_bytes > size:
                raise InputError(f"{path}: PT_NOTE segments add up to more than the file's {size} bytes "
                                 f"(they overlap); refusing a damaged or crafted core")
            for name, ntype, desc in _notes(buf, p_offset, span):
                if name != b"CORE":
                    continue
                if ntype == NT_PRPSINFO and len(desc) >= 136:
                    pid = struct.unpack_from("<i", desc, 24)[0]
                    comm = desc[40:56].split(b"\0")[0].decode(errors="replace")
                    args = desc[56:136].split(b"\0")[0].decode(errors="replace").strip()
                elif ntype == NT_FILE and len(desc) >= 16:
                    files.extend(_nt_file(path, desc))
    _check_loads(path, segs, size)
    return CoreInfo(path, pid, comm, args, segs, files)


def core_pages(path: str, anon_only: bool = False, notes: list[str] | None = None):
    """Yield ``(vaddr, region, page_bytes)`` for every whole page in the core's segments,
    and fill ``notes`` with what was skipped. Returns the :class:`CoreInfo` via ``.info``."""
    from ..pages import open_input
    with open_input(path, "core file") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise InputError(f"{path}: empty file, not an ELF core")
        from .. import lease
        lease.take(f.fileno(), str(path))   # a truncation by another process stops the run, not SIGBUS
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            lease.drop(f.fileno())
            raise
        try:
            info = read_core_info(path, buf)
            notes = notes if notes is not None else []
            files = _FileMap(info.files)
            yield info
            emitted = 0
            for seg in info.segments:
                if seg.filesz == 0:
                    continue
                if seg.vaddr % PAGE_SIZE:
                    notes.append(f"{path}: skipped segment at {seg.vaddr:#x}: not page aligned")
                    continue
                region = files.region(seg.vaddr)
                if anon_only and region != "[anon]":
                    continue
                whole = seg.filesz // PAGE_SIZE
                avail = max(0, min(whole, (size - seg.offset) // PAGE_SIZE)) if seg.offset < size else 0
                if avail < whole:
                    notes.append(f"{path}: truncated core: segment at {seg.vaddr:#x} has {avail} of {whole} pages")
                emitted += avail * PAGE_SIZE
                if emitted > size:          # held by _check_loads; kept as the last line of defence
                    raise InputError(f"{path}: the segments add up to more than the file's {size} bytes")
                for k in range(avail):
                    off = seg.offset + k * PAGE_SIZE
                    va = seg.vaddr + k * PAGE_SIZE
                    yield va, files.region(va) if files else region, buf[off:off + PAGE_SIZE]
        finally:
            buf.close()
            lease.drop(f.fileno())


class _FileMap:
    """The ``NT_FILE`` mappings, looked up by address in O(log n) (a core may list many)."""

    def __init__(self, files):
        self.files = sorted(files)
        self.starts = [s for s, _e, _n in self.files]

    def __bool__(self) -> bool:
        return bool(self.files)

    def region(self, va: int) -> str:
        k = bisect_right(self.starts, va) - 1
        # the kernel's mappings do not overlap; if a crafted list does, the nearest start wins
        if k >= 0 and va < self.files[k][1]:
            return self.files[k][2]
        return "[anon]"


def capture_core(path: str, out: str, anon_only: bool = False, progress=None, force: bool = False) -> Manifest:
    """Write the core's pages to ``out`` and its manifest to ``out.json`` (both atomically and
    private, 0600: they hold a process's memory)."""
    import json
    from ..fileio import AtomicFile
    from .manifest import manifest_path
    notes: list[str] = []
    gen = core_pages(path, anon_only, notes)
    info = next(gen)
    man = Manifest(source=f"core file {path}",
                   processes=[{"pid": info.pid, "comm": info.comm, "cmdline": info.args}])
    with AtomicFile(out, force=force, private=True) as fh:
        for va, region, data in gen:
            fh.write(data)
            man.pid.append(info.pid)
            man.vaddr.append(va)
            man.region.append(region)
            if progress is not None:
                progress.update(1)
        if not man.pid:
            raise InputError(f"{path}: the core holds no memory pages" + (" outside file mappings" if anon_only else ""))
        man.notes = notes
        man.processes[0]["pages"] = len(man.pid)
        with AtomicFile(manifest_path(out), force=force, private=True) as mf:
            mf.write(json.dumps(man.to_json()).encode())
    return man
