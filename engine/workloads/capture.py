"""Capture the private anonymous memory of live processes as a page set plus manifest.

For each process: read ``/proc/PID/maps`` and keep private anonymous mappings (no file
behind them: ``[heap]``, ``[stack]``, ``[anon:...]`` and unnamed ones), keep only pages that
are present in RAM (``/proc/PID/pagemap`` bit 63), skip pages mapping the shared zero page
(``/proc/kpageflags`` bit 24) unless asked, and read their bytes from ``/proc/PID/mem``.
Needs root (or CAP_SYS_PTRACE and CAP_SYS_ADMIN for PFNs and page flags).

The target is checked before any signal is sent (:func:`check_target`): only a live user
process with a pid above 1 is accepted; never pagemerge itself, a member of its own process
group, a kernel thread (``PF_KTHREAD`` in ``/proc/PID/stat``), a zombie or a dead task, or
a thread id that is not its process's leader. Signals go through a pidfd where the kernel
has them (so a pid reused after the check is never signalled) and never to a pid <= 1.

A running target is stopped (SIGSTOP) for a consistent image; the capture waits until
``/proc/PID/stat`` says it is stopped, and resumes it (SIGCONT) on every exit path: success,
error, SIGINT, and SIGTERM/SIGHUP (which the CLI turns into ``SystemExit``). A target that
was already stopped (state ``T``, or ``t`` under a debugger) is read as it is and left
stopped: no signal is sent to it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import struct
import time
from dataclasses import dataclass

from ..errors import InputError, PagemergeError
from ..pages import PAGE_SIZE
from .manifest import Manifest, manifest_path

PM_PRESENT = 1 << 63
PM_SWAPPED = 1 << 62
PM_PFN_MASK = (1 << 55) - 1
KPF_ZERO_PAGE = 1 << 24
#: ``task->flags`` bit of a kernel thread (include/linux/sched.h)
PF_KTHREAD = 0x00200000
#: the highest pid the kernel hands out (PID_MAX_LIMIT on 64-bit)
PID_MAX_LIMIT = 1 << 22
#: how long to wait for a SIGSTOP to take effect before giving up
STOP_TIMEOUT = 5.0
_SPECIAL = {"[vvar]", "[vdso]", "[vsyscall]", "[vvar_vclock]", "[uprobes]"}


@dataclass
class TaskStat:
    """The fields of ``/proc/PID/stat`` the capture decides by."""
    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    flags: int


def task_stat(pid: int) -> TaskStat:
    """``/proc/PID/stat`` parsed (``comm`` may hold spaces and parentheses: split at the last ')')."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read(4096).decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        raise PagemergeError(f"pid {pid}: no such process") from None
    except OSError as e:
        raise PagemergeError(f"pid {pid}: cannot read /proc/{pid}/stat ({e.strerror})") from None
    head, sep, tail = raw.rpartition(")")
    fields = tail.split()
    if not sep or len(fields) < 7:
        raise PagemergeError(f"pid {pid}: cannot parse /proc/{pid}/stat")
    return TaskStat(pid=pid, comm=head.partition("(")[2], state=fields[0], ppid=int(fields[1]),
                    pgrp=int(fields[2]), flags=int(fields[6]))


def _tgid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return pid


def check_target(pid: int) -> TaskStat:
    """Refuse, in one line, any pid that is not a live user process pagemerge may stop.

    Runs before any signal is sent. Accepted: a pid above 1, not this process, not in this
    process's group, not a kernel thread, not a zombie or dead task, a process (thread group
    leader) rather than one of its threads."""
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise InputError(f"--pid: {pid!r} is not a process id")
    if pid <= 1 or pid > PID_MAX_LIMIT:
        what = {0: "0 means pagemerge's own process group", 1: "1 is init"}.get(
            pid, "a negative pid means a whole process group or every process" if pid < 0 else
            f"pids go up to {PID_MAX_LIMIT}")
        raise InputError(f"--pid {pid}: not a user process ({what}); refusing to signal it")
    if pid == os.getpid():
        raise InputError(f"--pid {pid}: is pagemerge itself; refusing to stop it")
    st = task_stat(pid)
    if st.flags & PF_KTHREAD:
        raise InputError(f"--pid {pid}: is a kernel thread ({st.comm}), not a user process")
    if st.state in ("Z", "X", "x"):
        raise InputError(f"--pid {pid}: is a {'zombie' if st.state == 'Z' else 'dead'} process "
                         f"({st.comm}); it has no memory to capture")
    try:
        own, theirs = os.getpgid(0), os.getpgid(pid)
    except ProcessLookupError:
        raise PagemergeError(f"pid {pid}: no such process") from None
    if theirs == own:
        raise InputError(f"--pid {pid}: is in pagemerge's own process group {own} ({st.comm}); "
                         f"refusing to stop it (start it in its own session, e.g. with setsid)")
    tgid = _tgid(pid)
    if tgid != pid:
        raise InputError(f"--pid {pid}: is a thread of process {tgid}; give --pid {tgid}")
    return st


class _Target:
    """A validated process to signal: through a pidfd when the kernel has them (a pid reused
    after the check is then never signalled), else by pid, and never a pid <= 1."""

    def __init__(self, pid: int):
        if pid <= 1:
            raise InputError(f"--pid {pid}: refusing to signal pid {pid}")
        self.pid = pid
        self.fd = None
        if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
            try:
                self.fd = os.pidfd_open(pid)
            except ProcessLookupError:
                raise PagemergeError(f"pid {pid}: no such process") from None
            except OSError:
                self.fd = None           # an old kernel: fall back to kill()

    def signal(self, sig: int) -> None:
        if self.fd is not None:
            signal.pidfd_send_signal(self.fd, sig)
        elif self.pid > 1:                # checked in __init__; kept here, next to the kill()
            os.kill(self.pid, sig)
        else:
            raise InputError(f"--pid {self.pid}: refusing to signal pid {self.pid}")

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _wait_stopped(pid: int, timeout: float | None = None) -> None:
    timeout = STOP_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        st = task_stat(pid)
        if st.state in ("T", "t"):
            return
        if st.state in ("Z", "X", "x"):
            raise PagemergeError(f"pid {pid}: the process exited during capture")
        if time.monotonic() > deadline:
            raise PagemergeError(f"pid {pid}: did not stop within {timeout:g} s (state {st.state}); "
                                 f"nothing was captured and it was resumed")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@contextlib.contextmanager
def stopped(pid: int, stop: bool = True):
    """Hold ``pid`` stopped for the body, then put it back as it was.

    A running process is sent SIGSTOP, waited for (``/proc/PID/stat`` state ``T``) and sent
    SIGCONT on every exit path (an exception, SIGINT, SIGTERM/SIGHUP as ``SystemExit``). A
    process already stopped is left alone, and stays stopped. Yields whether this call
    stopped it."""
    st = check_target(pid)
    if not stop or st.state in ("T", "t"):
        yield False
        return
    target = _Target(pid)
    sent = False
    try:
        st = check_target(pid)           # the pidfd now pins the process: check it once more
        if st.state in ("T", "t"):
            yield False
            return
        try:
            sent = True
            target.signal(signal.SIGSTOP)
        except ProcessLookupError:
            sent = False
            raise PagemergeError(f"pid {pid}: no such process") from None
        except PermissionError:
            sent = False
            raise PagemergeError(f"pid {pid}: cannot stop the process (needs root or the same user)") from None
        _wait_stopped(pid)
        yield True
    finally:
        # a second SIGINT/SIGTERM/SIGHUP arriving now must not skip the resume: they are held
        # until the process runs again (and then act as usual)
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            if sent:
                with contextlib.suppress(ProcessLookupError):
                    target.signal(signal.SIGCONT)
        finally:
            try:
                target.close()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


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
    return ``([(vaddr, region), ...], notes)``. A running process is stopped while it is read
    and always resumed; one already stopped stays stopped (see :func:`stopped`)."""
    with stopped(pid, stop):
        return _read_process(pid, sink, include_zero_page)


def _read_process(pid: int, sink, include_zero_page: bool) -> tuple[list, list[str]]:
    where: list[tuple[int, str]] = []
    notes: list[str] = []
    maps = private_anon_mappings(pid)
    with contextlib.ExitStack() as stack:
        try:
            pm = stack.enter_context(open(f"/proc/{pid}/pagemap", "rb"))
            mem = stack.enter_context(open(f"/proc/{pid}/mem", "rb"))
        except FileNotFoundError:
            raise PagemergeError(f"pid {pid}: the process vanished during capture") from None
        except PermissionError:
            raise PagemergeError(f"pid {pid}: cannot open /proc/{pid}/mem (needs root or CAP_SYS_PTRACE)") from None
        try:
            kpf = stack.enter_context(open("/proc/kpageflags", "rb"))
        except OSError:
            kpf = None
            notes.append("no /proc/kpageflags (needs root): zero-page mappings could not be told apart")
        for m, first, raw in _pagemap_runs(pid, pm, maps, notes):
            entries = struct.unpack(f"<{len(raw) // 8}Q", raw)
            for j, e in enumerate(entries):
                i = first + j
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
    return where, notes


#: pagemap entries read at a time (a reserved mapping may span terabytes: read it in pieces)
PAGEMAP_BATCH = 1 << 16


def _pagemap_runs(pid: int, pm, maps: list[Mapping], notes: list[str]):
    """``(mapping, first page index in it, raw pagemap bytes)`` in batches of
    :data:`PAGEMAP_BATCH` entries, so the memory used does not grow with the mapping's size."""
    for m in maps:
        n = (m.end - m.start) // PAGE_SIZE
        for first in range(0, n, PAGEMAP_BATCH):
            k = min(PAGEMAP_BATCH, n - first)
            try:
                pm.seek((m.start // PAGE_SIZE + first) * 8)
                raw = pm.read(k * 8)
            except OSError as e:
                notes.append(f"pid {pid}: skipped region {m.name} at {m.start:#x} (pagemap: {e.strerror})")
                break
            yield m, first, raw


def capture_pids(pids: list[int], out: str | os.PathLike, include_zero_page: bool = False,
                 stop: bool = True, force: bool = False) -> Manifest:
    """Capture ``pids`` into ``out`` (pages) and ``out.json`` (manifest), both written atomically
    and private (0600): they hold another process's memory."""
    import json
    from ..fileio import AtomicFile
    if not pids:
        raise InputError("capture: no --pid given")
    seen = set()
    for pid in pids:                     # every pid is checked before any is stopped
        if pid in seen:
            raise InputError(f"--pid {pid}: given more than once")
        seen.add(pid)
        check_target(pid)
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
