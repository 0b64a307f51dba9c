"""Read leases on mapped inputs: another process truncating a page set stops the run cleanly
(one line naming the file) instead of a SIGBUS, and only after the mapping is gone does the
truncation go ahead. Real processes, a real file system (the kernel's F_SETLEASE)."""
from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import time

import pytest

from engine import lease
from engine.errors import InputError
from engine.pages import PAGE_SIZE, PageSet


def _leases_supported(path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EACCES):
            return False
        raise
    finally:
        os.close(fd)


@pytest.fixture
def pageset_file(tmp_path):
    p = tmp_path / "set.pages"
    p.write_bytes(os.urandom(64 * PAGE_SIZE))
    if not _leases_supported(p):
        pytest.skip("this file system (or user) cannot take file leases")
    return p


def _spawn(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True)


HOLD_FOR_WRITING = ("import sys, time; f = open(sys.argv[1], 'r+b'); print('open', flush=True); "
                    "time.sleep(float(sys.argv[2]))")
TRUNCATE = "import os, sys, time; t = time.time(); os.truncate(sys.argv[1], 0); print(time.time() - t, flush=True)"


def test_no_lease_outside_guard(pageset_file):
    with PageSet.open(pageset_file) as ps:
        assert len(ps) == 64
        assert lease.held() == {}


def test_lease_taken_and_released(pageset_file):
    with lease.guard():
        ps = PageSet.open(pageset_file)
        fd = ps._file.fileno()
        assert lease.held() == {fd: str(pageset_file)}
        assert fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_RDLCK
        ps.close()
        assert lease.held() == {}


def test_truncation_stops_the_run_then_goes_ahead(pageset_file):
    before = pageset_file.read_bytes()
    with lease.guard():
        ps = PageSet.open(pageset_file)
        child = _spawn(TRUNCATE, pageset_file)
        try:
            with pytest.raises(lease.InputChanged, match=str(pageset_file)) as exc:
                for _ in range(400):                   # a run reading the mapping
                    _first, chunk = next(ps.chunks(16, release=False))
                    assert chunk.tobytes() == before[:16 * PAGE_SIZE]
                    time.sleep(0.025)
            assert "\n" not in str(exc.value)
            # the truncation is still held back: the file is whole while the mapping is open
            assert child.poll() is None
            assert os.path.getsize(pageset_file) == 64 * PAGE_SIZE
        finally:
            chunk = None                      # the run's views of the mapping are gone
            ps.close()
        waited = float(child.communicate(timeout=30)[0])
    assert child.returncode == 0
    assert waited < 30                        # released at close, not at the kernel's lease-break-time
    assert os.path.getsize(pageset_file) == 0


def test_file_open_for_writing_is_refused(pageset_file):
    holder = _spawn(HOLD_FOR_WRITING, pageset_file, 20)
    try:
        assert holder.stdout.readline().strip() == "open"
        with lease.guard():
            with pytest.raises(InputError, match="open for writing") as exc:
                PageSet.open(pageset_file)
            assert str(pageset_file) in str(exc.value)
            assert lease.held() == {}
    finally:
        holder.kill()
        holder.wait()


def test_cli_refuses_a_page_set_open_for_writing(pageset_file):
    holder = _spawn(HOLD_FOR_WRITING, pageset_file, 60)
    try:
        assert holder.stdout.readline().strip() == "open"
        r = subprocess.run([sys.executable, "-m", "pagemerge", "analyze", str(pageset_file)],
                           capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pagemerge: {pageset_file}: the file is open for writing")
    # once the writer is gone the same command runs
    r = subprocess.run([sys.executable, "-m", "pagemerge", "analyze", str(pageset_file)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_no_lease_outlives_its_guard(pageset_file):
    """A page set a caller left open (as a command run in-process may) loses its lease when the
    guard ends: with the handler gone, a lease break would kill the process with SIGIO."""
    with lease.guard():
        ps = PageSet.open(pageset_file)
        fd = ps._file.fileno()
        assert fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_RDLCK
    assert lease.held() == {}
    assert fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_UNLCK
    child = _spawn(TRUNCATE, pageset_file)             # goes ahead at once; this process lives on
    assert float(child.communicate(timeout=30)[0]) < 5 and child.returncode == 0
    ps.close()


def test_a_closed_fd_is_forgotten_not_unlocked(pageset_file, tmp_path):
    """A lease whose file was closed without drop is forgotten; the fd number, reused by
    another leased file, keeps that file's lease."""
    with lease.guard():
        f = open(pageset_file, "rb")
        assert lease.take(f.fileno(), "first")
        num = f.fileno()
        f.close()                                      # closed behind the lease table's back
        other = tmp_path / "other.pages"
        other.write_bytes(bytes(PAGE_SIZE))
        g = open(other, "rb")
        assert g.fileno() == num                       # the lowest free number: the same one
        fcntl.fcntl(g.fileno(), fcntl.F_SETLEASE, fcntl.F_RDLCK)   # leased by someone else
        assert lease.held() == {}
        lease.drop(num)
        assert fcntl.fcntl(g.fileno(), fcntl.F_GETLEASE) == fcntl.F_RDLCK
        fcntl.fcntl(g.fileno(), fcntl.F_SETLEASE, fcntl.F_UNLCK)
        g.close()


def test_guard_restores_the_signal_handler():
    import signal
    old = signal.getsignal(signal.SIGIO)
    with lease.guard():
        assert signal.getsignal(signal.SIGIO) is lease._on_sigio
    assert signal.getsignal(signal.SIGIO) == old
