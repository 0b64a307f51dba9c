"""Read leases on memory-mapped inputs: a file truncated under the mapping stops the run cleanly.

A page set or core file is memory-mapped, not read into memory. If another process truncates it
while pagemerge reads it, the next access to a page past the new end is a SIGBUS, which kills
the process wherever it is (a compiled loop, a half-written output). The kernel's remedy is a
file lease (``fcntl(F_SETLEASE, F_RDLCK)``, ``man 2 fcntl``): while pagemerge holds a read
lease, an ``open`` for writing or a ``truncate`` of the file by anyone else is held back (up to
``/proc/sys/fs/lease-break-time`` seconds) and pagemerge is sent SIGIO. Under :func:`guard`
(the command line runs every command under it) that signal becomes :class:`InputChanged` in
the main thread: the run stops, every ``with`` unwinds (outputs are written atomically, so
nothing half-written remains), the mapping is closed and the lease released, and only then
does the other process's write or truncation go ahead.

A lease is taken only under :func:`guard`, in the main thread (Python runs signal handlers
there), and only where the file system supports leases and the caller may take one (the
file's owner, or ``CAP_LEASE``, which root has). A file already open for writing by some
process cannot be leased: it is refused with one line (it may change under the mapping).
Elsewhere (a library call outside :func:`guard`, a Dask worker's thread, a file system without
leases) nothing changes: the file is mapped without a lease, as before.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import threading

from .errors import InputError, PagemergeError


class InputChanged(PagemergeError):
    """Another process began to write or truncate an input pagemerge holds mapped."""


#: fd -> (the file's name, its (st_dev, st_ino)), for the leases held now
_held: dict[int, tuple[str, tuple[int, int]]] = {}
_active = 0
_lock = threading.Lock()


def _on_sigio(signum, frame):
    """A lease is being broken: find which file (its lease reads back as the type it is being
    downgraded to) and stop the run naming it."""
    breaking = []
    for fd, (name, ident) in list(_held.items()):
        if not _same_file(fd, ident):
            _held.pop(fd, None)             # closed without drop (its lease went with it)
            continue
        try:
            if fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK:
                breaking.append(name)
        except OSError:
            breaking.append(name)
    if not breaking:
        return                              # not ours (or already released): nothing to stop
    raise InputChanged(f"{breaking[0]}: another process is opening it for writing or truncating it "
                       "while pagemerge has it mapped; stopped before it changes (the file is released "
                       "now; run again once it is stable)")


@contextlib.contextmanager
def guard():
    """Take read leases on the inputs mapped inside this block and turn a lease break into
    :class:`InputChanged`. In the main thread only; elsewhere a no-op (no leases)."""
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGIO)
    signal.signal(signal.SIGIO, _on_sigio)
    with _lock:
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            last = _active == 0
        if last:
            # a lease must not outlive its handler: a break would then deliver SIGIO to its
            # default action and kill the process. Inputs still open here (a caller that did
            # not close its page set) are mapped without a lease from now on, as outside guard
            for fd in list(_held):
                drop(fd)
        signal.signal(signal.SIGIO, old if old is not None else signal.SIG_DFL)


def take(fd: int, name: str) -> bool:
    """Take a read lease on ``fd`` (opened read-only) for the file ``name`` when under
    :func:`guard` in the main thread; True if held. A file open for writing somewhere is
    refused (:class:`InputError`); where leases are not possible, False (mapped as before)."""
    if not _active or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGIO) is not _on_sigio:
        return False            # someone replaced the handler: a lease break would kill the process
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EBUSY):
            raise InputError(f"{name}: the file is open for writing by a process; pagemerge maps its "
                             "input and a file changed or truncated under the mapping would crash the run "
                             "(try again when the writer has closed it)") from None
        return False            # EACCES (not the owner, no CAP_LEASE), EINVAL (no lease support)
    _held[fd] = (name, _ident(fd))
    return True


def _ident(fd: int):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _same_file(fd: int, ident) -> bool:
    """``fd`` is still the file the lease was taken on (not closed, and its number not reused
    by another file since)."""
    return ident is not None and _ident(fd) == ident


def drop(fd: int) -> None:
    """Release the lease on ``fd`` if one is held (before the file is closed; closing the
    file releases it too). An fd closed meanwhile, whose number now names another file, is
    only forgotten: that file's lease, if any, is not touched."""
    entry = _held.pop(fd, None)
    if entry is not None and _same_file(fd, entry[1]):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def held() -> dict[int, str]:
    """The leases held now (fd -> file name); entries whose fd was closed are forgotten."""
    for fd, (_name, ident) in list(_held.items()):
        if not _same_file(fd, ident):
            _held.pop(fd, None)
    return {fd: entry[0] for fd, entry in _held.items()}


__all__ = ["InputChanged", "drop", "guard", "held", "take"]
