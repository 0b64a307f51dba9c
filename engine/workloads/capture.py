"""Capture the private anonymous memory of live processes as a page set plus manifest.

For each process: read ``/proc/PID/maps`` and keep private anonymous mappings (no file
behind them: ``[heap]``, ``[stack]``, ``[anon:...]`` and unnamed ones), keep only pages that
are present in RAM (``/proc/PID/pagemap`` bit 63), skip pages mapping the shared zero page
(``/proc/kpageflags`` bit 24) unless asked, and read their bytes from ``/proc/PID/mem``.
The process is stopped (SIGSTOP) for a consistent image and always resumed, also on error
or interrupt. Needs root (or CAP_SYS_PTRACE and CAP_SYS_ADMIN for PFNs and page flags).
"""
from __future__ import annotations

import os
import signal
import struct
from dataclasses import dataclass

from ..errors import InputError, PagemergeError
from ..pages import PAGE_SIZE
from .manifest import Manifest, manifest_path

PM_PRESENT = 1 << 63
PM_SWAPPED = 1 << 62
PM_PFN_MASK = (1 << 55) - 1
KPF_ZERO_PAGE = 1 << 24
_SPECIAL = {"[vvar]", "[vdso]", "[vsyscall]", "[vvar_vclock]", "[uprobes]"}


@dataclass
class Mapping:
    start: int
    end: int
    perms: str
    name: str


def private_anon_mappings(pid: int) -> list[Mapping]:
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise PagemergeError(f"pid {pid}: no such process") from None
    except PermissionError:
        raise PagemergeError(f"pid {pid}: cannot read /proc/{pid}/maps (needs root or CAP_SYS_PTRACE)") from None
    out = []
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        rng, perms, _off, _dev, inode = parts[:5]
        name = parts[5].strip() if len(parts) > 5 else ""
        if perms[0] != "r" or perms[3] != "p" or inode != "0":
            continue
        if name in _SPECIAL or (name and not name.startswith("[")):
            continue     # file-backed (deleted files included) or special
        a, b = (int(x, 16) for x in rng.split("-"))
        out.append(Mapping(a, b, perms, name or "[anon]"))
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def capture_process(pid: int, sink, include_zero_page: bool = False, stop: bool = True) -> tuple[list, list[str]]:
    """Write each present private anonymous page of ``pid`` to ``sink`` (a binary file) and
    return ``([(vaddr, region), ...], notes)``. The process is stopped while it is read and
    always resumed, also on error or interrupt."""
    where: list[tuple[int, str]] = []
    notes: list[str] = []
    stopped = False
    try:
        if stop:
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped = True
            except ProcessLookupError:
                raise PagemergeError(f"pid {pid}: no such process") from None
            except PermissionError:
                raise PagemergeError(f"pid {pid}: cannot stop the process (needs root or the same user)") from None
        maps = private_anon_mappings(pid)
        try:
            pm = open(f"/proc/{pid}/pagemap", "rb")
            mem = open(f"/proc/{pid}/mem", "rb")
        except FileNotFoundError:
            raise PagemergeError(f"pid {pid}: the process vanished during capture") from None
        except PermissionError:
            raise PagemergeError(f"pid {pid}: cannot open /proc/{pid}/mem (needs root or CAP_SYS_PTRACE)") from None
        try:
            kpf = open("/proc/kpageflags", "rb")
        except OSError:
            kpf = None
            notes.append("no /proc/kpageflags (needs root): zero-page mappings could not be told apart")
        with pm, mem:
            for m in maps:
                n = (m.end - m.start) // PAGE_SIZE
                try:
                    pm.seek(m.start // PAGE_SIZE * 8)
                    raw = pm.read(n * 8)
                except OSError as e:
                    notes.append(f"pid {pid}: skipped region {m.name} at {m.start:#x} (pagemap: {e.strerror})")
                    continue
                entries = struct.unpack(f"<{len(raw) // 8}Q", raw)
                for i, e in enumerate(entries):
                    if not e & PM_PRESENT:
                        continue
                    pfn = e & PM_PFN_MASK
                    if kpf is not None and not include_zero_page and pfn:
                        kpf.seek(pfn * 8)
                        fl = kpf.read(8)
                        if len(fl) == 8 and struct.unpack("<Q", fl)[0] & KPF_ZERO_PAGE:
                            continue
                    va = m.start + i * PAGE_SIZE
                    try:
                        mem.seek(va)
                        data = mem.read(PAGE_SIZE)
                    except OSError as e2:
                        notes.append(f"pid {pid}: skipped unreadable page {va:#x} in {m.name} ({e2.strerror})")
                        continue
                    if len(data) != PAGE_SIZE:
                        notes.append(f"pid {pid}: skipped short read at {va:#x} in {m.name}")
                        continue
                    sink.write(data)
                    where.append((va, m.name))
        if kpf is not None:
            kpf.close()
    finally:
        if stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    return where, notes


def capture_pids(pids: list[int], out: str | os.PathLike, include_zero_page: bool = False,
                 stop: bool = True, force: bool = False) -> Manifest:
    """Capture ``pids`` into ``out`` (pages) and ``out.json`` (manifest), both written atomically
    and private (0600): they hold another process's memory."""
    import json
    from ..fileio import AtomicFile
    if not pids:
        raise InputError("capture: no --pid given")
    man = Manifest(source="capture")
    with AtomicFile(out, force=force, private=True) as fh:
        for pid in pids:
            comm, cmd = _comm(pid), _cmdline(pid)
            where, notes = capture_process(pid, fh, include_zero_page=include_zero_page, stop=stop)
            man.processes.append({"pid": pid, "comm": comm, "cmdline": cmd, "pages": len(where)})
            man.notes.extend(notes)
            for va, region in where:
                man.pid.append(pid)
                man.vaddr.append(va)
                man.region.append(region)
        if not man.pid:
            raise PagemergeError(f"capture: no present private anonymous pages in pid(s) {', '.join(map(str, pids))}")
        with AtomicFile(manifest_path(out), force=force, private=True) as mf:
            mf.write(json.dumps(man.to_json()).encode())
    return man
