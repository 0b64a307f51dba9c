"""One place that opens every input and writes every output.

pagemerge runs as root, so a careless open or rename can damage the machine. The rules:

Inputs
  * Only regular files are read (a symbolic link to one is fine). A FIFO, a device, a socket
    or a directory is refused in one line, and a FIFO is never opened in a way that waits for
    a writer (``O_NONBLOCK`` on open).
  * Every read is bounded: :func:`read_input` refuses a file larger than the limit for its
    kind (:data:`LIMITS`), and never reads more than the limit plus one byte, even where the
    size in ``stat`` is wrong (``/proc`` files say 0).
  * ``-`` means standard input only where a caller allows it, and the same bound applies.

Outputs (:class:`AtomicFile`)
  * The target must not exist, or must be a regular file that the caller may replace: with
    ``force=True`` (the CLI's ``--force``), or when ``replaceable(path)`` says it is an earlier
    output of the same kind. A symbolic link, a device, a FIFO or a directory is never
    replaced and never followed.
  * The bytes go to a temporary file in the target's folder, which is renamed over the
    target only when everything was written. The temporary file is removed on every exit
    path: an exception, SIGINT, SIGTERM and SIGHUP (see :func:`cleanup_on_signals`), and at
    interpreter exit. A stale one left by a killed run (its pid no longer alive) is removed
    by the next run that writes the same target.
  * ``private=True`` writes the file 0600 (captured process memory and its manifest).

:func:`inside` proves that a path built from a document's data stays inside its folder.
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import io
import os
import re
import signal
import stat
import sys
import threading
from pathlib import Path
from typing import Callable

from .errors import InputError, PagemergeError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

#: the most bytes read from one input of each kind (page sets and cores are memory-mapped)
LIMITS = {
    "trace": 64 * MiB,
    "manifest": 1 * GiB,
    "claims text": 16 * MiB,
    "chart": 16 * MiB,
    "YAML file": 16 * MiB,
    "XML file": 2 * GiB,
    "PDF file": 512 * MiB,
    "JSON file": 64 * MiB,
}

_TMP_SUFFIX = ".pagemerge-tmp"
_live_temps: set[str] = set()
_live_lock = threading.Lock()


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.0f} {unit}" if n % size == 0 else f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# ---- inputs ---------------------------------------------------------------------------------
def open_input(path: str | os.PathLike, what: str, *, allow_stdin: bool = False) -> io.BufferedReader:
    """Open a regular file for binary reading; anything else is one line naming the file."""
    if allow_stdin and str(path) == "-":
        return sys.stdin.buffer
    p = str(path)
    try:
        # look before opening: opening a device can act on it (a watchdog arms when opened)
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{p}: is {_kind(st.st_mode)}, not a regular file ({what} expected)")
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(f"{p}: no such {what}") from None
    except PermissionError:
        raise InputError(f"{p}: cannot read {what} (permission denied)") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(f"{p}: too many levels of symbolic links") from None
        raise InputError(f"{p}: cannot open {what} ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{p}: is {_kind(st.st_mode)}, not a regular file ({what} expected)")
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path: str | os.PathLike, what: str, max_bytes: int | None = None, *,
               allow_stdin: bool = False) -> bytes:
    """The whole of a regular file (or ``-``), refused when larger than ``max_bytes``
    (default: :data:`LIMITS` for ``what``)."""
    limit = LIMITS.get(what, 64 * MiB) if max_bytes is None else max_bytes
    f = open_input(path, what, allow_stdin=allow_stdin)
    try:
        if f is not sys.stdin.buffer:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise InputError(f"{path}: {what} is {_human(size)}, more than the limit of {_human(limit)}")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise InputError(f"{path}: cannot read {what} ({e.strerror})") from None
        if len(data) > limit:
            raise InputError(f"{path}: {what} is larger than the limit of {_human(limit)}")
        return data
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def decode_text(data: bytes, where: str, what: str = "text") -> str:
    """Text from bytes: a UTF-8, UTF-16 or UTF-32 byte-order mark decides the encoding, else
    UTF-8; undecodable bytes are one line naming the offset."""
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                     (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            break
    else:
        enc = "utf-8"
    try:
        return data.decode(enc)
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: {what} is not valid {enc.upper().replace('-SIG', '')} "
                         f"(byte {e.start}: {e.reason})") from None


def read_text_input(path: str | os.PathLike, what: str, max_bytes: int | None = None, *,
                    allow_stdin: bool = False) -> str:
    """A bounded regular-file read decoded as text (see :func:`decode_text`)."""
    return decode_text(read_input(path, what, max_bytes, allow_stdin=allow_stdin), str(path), what)


# ---- outputs --------------------------------------------------------------------------------
def check_target(path: str | os.PathLike, *, force: bool = False,
                 replaceable: Callable[[Path], bool] | None = None) -> None:
    """Refuse an output target that is not a regular file, or that exists without ``force``
    (or without ``replaceable`` saying it is an earlier output of ours)."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise InputError(f"{p}: a part of the path is not a directory") from None
    except OSError as e:
        raise InputError(f"{p}: cannot check the output path ({e.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{p}: is a symbolic link; refusing to replace or follow it (give the real path)")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: exists and is {_kind(st.st_mode)}; refusing to replace it")
    if force or (replaceable is not None and replaceable(p)):
        return
    raise InputError(f"{p}: exists; refusing to overwrite it (use --force)")


def _pid_alive(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def clean_stale_temps(folder: Path, name: str) -> list[Path]:
    """Remove temporary files that a killed run left for the target ``folder/name``.

    Only regular files named like ours (``.NAME.PID.XXXX.pagemerge-tmp``) whose writer
    is no longer alive are removed."""
    removed = []
    pat = re.compile(r"\." + re.escape(name) + r"\.(\d+)\.[A-Za-z0-9_]+" + re.escape(_TMP_SUFFIX) + r"\Z")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = pat.match(e.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        try:
            if e.is_file(follow_symlinks=False):
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            pass
    return removed


class AtomicFile:
    """Write a file under a temporary name in its folder and rename it into place on success.

    ``force``: replace an existing regular file. ``replaceable``: a test that an existing
    regular file is an earlier output of the same kind (a report replacing its previous run).
    ``private``: mode 0600. Nothing is left behind on failure, interrupt or SIGTERM/SIGHUP."""

    def __init__(self, path: str | os.PathLike, *, force: bool = False, private: bool = False,
                 replaceable: Callable[[Path], bool] | None = None):
        self.path = Path(path)
        self.force = force
        self.private = private
        self.replaceable = replaceable
        self.tmp: str | None = None

    def __enter__(self):
        import tempfile
        check_target(self.path, force=self.force, replaceable=self.replaceable)
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise InputError(f"{parent}: is not a directory") from None
        except OSError as e:
            raise InputError(f"{parent}: cannot create the output folder ({e.strerror})") from None
        clean_stale_temps(parent, self.path.name)
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{self.path.name}.{os.getpid()}.", suffix=_TMP_SUFFIX)
        except OSError as e:
            raise InputError(f"{self.path}: cannot write in {parent} ({e.strerror})") from None
        with _live_lock:
            _live_temps.add(tmp)
        self.tmp = tmp
        if self.private:
            os.fchmod(fd, 0o600)
        else:
            os.fchmod(fd, 0o666 & ~_umask())
        self.f = os.fdopen(fd, "wb")
        return self.f

    def __exit__(self, exc_type, exc, tb):
        try:
            self.f.close()
            if exc_type is None:
                # the target may have changed while we wrote: check again before the rename
                check_target(self.path, force=self.force, replaceable=self.replaceable)
                os.replace(self.tmp, self.path)
        finally:
            _discard(self.tmp)
        return False


def _umask() -> int:
    """The process's umask, read without changing it (changing it, even for a moment, would
    let another thread create a world-writable file)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _discard(tmp: str | None) -> None:
    if tmp is None:
        return
    with _live_lock:
        _live_temps.discard(tmp)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def write_atomically(path: str | os.PathLike, chunks, **kw) -> None:
    """Write ``chunks`` (an iterable of bytes) to ``path`` through an :class:`AtomicFile`."""
    with AtomicFile(path, **kw) as f:
        for c in chunks:
            f.write(c)


@atexit.register
def _remove_live_temps() -> None:
    with _live_lock:
        temps = list(_live_temps)
        _live_temps.clear()
    for t in temps:
        with contextlib.suppress(OSError):
            os.unlink(t)


@contextlib.contextmanager
def cleanup_on_signals():
    """Turn SIGTERM and SIGHUP into ``SystemExit`` (and keep SIGINT a KeyboardInterrupt), so
    every ``finally`` and ``__exit__`` runs: temporary files are removed, stopped processes
    resumed, the kernel restored. Only in the main thread; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in old:
        signal.signal(s, _raise)
    old_int = signal.getsignal(signal.SIGINT)
    if old_int in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        signal.signal(signal.SIGINT, old_int if old_int is not None else signal.SIG_DFL)


# ---- names from documents -------------------------------------------------------------------
def inside(folder: str | os.PathLike, name: str, what: str = "name") -> Path:
    """``folder/name``, proven to stay inside ``folder`` (no separators, no ``..``, no
    absolute path, no NUL); anything else is refused in one line."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
            or name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise InputError(f"{name!r}: not a safe {what} for a file in {folder}")
    base = Path(folder)
    out = base / name
    if os.path.commonpath([os.path.abspath(base), os.path.abspath(out)]) != os.path.abspath(base):
        raise InputError(f"{name!r}: {what} would leave {folder}")
    return out


__all__ = ["LIMITS", "open_input", "read_input", "read_text_input", "decode_text", "check_target", "AtomicFile",
           "write_atomically", "clean_stale_temps", "cleanup_on_signals", "inside", "PagemergeError"]
