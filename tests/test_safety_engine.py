"""Safety at the library's edges (issue #10): which processes capture may signal, how it leaves
them, core files that lie about their size, analyze on a huge sparse file, streaming
generate, manifest structure, KSM traces that never converge, and numeric options.

Every process these tests signal is one the test started itself, in its own session."""
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import engine
from engine.errors import InputError, PagemergeError
from engine.pages import PAGE_SIZE, PageSet
from engine.workloads import capture as cap
from engine.workloads.manifest import Manifest, manifest_path
from pagemerge.cli import main as _main
from tests.pagesets import MIN_ENV

_KILL = os.kill          # the tests' own signals to their own children, not seen by SignalSpy
REPO = os.path.dirname(os.path.dirname(os.path.abspath(engine.__file__)))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's memory needs root")


def main(argv) -> int:
    """The CLI in this process; usage errors (argparse's SystemExit) give their status too."""
    try:
        return _main(argv)
    except SystemExit as e:
        return e.code


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_state(pid: int, want, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        s = state(pid)
        if s in want or time.monotonic() > deadline:
            return s
        time.sleep(0.005)


def child(touch_mib: int = 1, *, own_session: bool = True, threads: int = 0) -> subprocess.Popen:
    """A user process this test owns: touches ``touch_mib`` MiB of private memory, then sleeps."""
    code = (f"import sys, threading, time\n"
            f"b = bytearray({touch_mib} << 20)\n"
            f"b[::4096] = b'\\x07' * (len(b) // 4096)\n"
            f"for _ in range({threads}): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
            f"print('ready', flush=True)\n"
            f"time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-S", "-c", code], env=MIN_ENV, cwd="/", stdout=subprocess.PIPE,
                         start_new_session=own_session)
    assert p.stdout.readline().startswith(b"ready")
    return p


def reap(p: subprocess.Popen) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            _KILL(p.pid, signal.SIGCONT)
            _KILL(p.pid, signal.SIGKILL)
    p.wait()


class SignalSpy:
    """Records every signal the capture code sends (by pid or by pidfd) and sends it."""

    def __init__(self, monkeypatch):
        self.sent = []
        real_kill, real_pidfd = os.kill, getattr(signal, "pidfd_send_signal", None)
        fds = {}
        real_open = os.pidfd_open if hasattr(os, "pidfd_open") else None

        def kill(pid, sig):
            self.sent.append((pid, sig))
            if pid <= 1:
                raise AssertionError(f"kill({pid}, {sig}) must never be called")
            return real_kill(pid, sig)

        def pidfd_open(pid, *a):
            fd = real_open(pid, *a)
            fds[fd] = pid
            return fd

        def pidfd_send(fd, sig, *a):
            self.sent.append((fds.get(fd, "?"), sig))
            return real_pidfd(fd, sig, *a)
        monkeypatch.setattr(cap.os, "kill", kill)
        if real_open is not None:
            monkeypatch.setattr(cap.os, "pidfd_open", pidfd_open)
            monkeypatch.setattr(cap.signal, "pidfd_send_signal", pidfd_send)


# ---- 1. capture: which pids, and the target's state ------------------------------------------
@pytest.mark.parametrize("pid,msg", [
    ("0", "0 means pagemerge's own process group"),
    ("1", "1 is init"),
    ("-1", "'-1' is not a whole number"),
    ("99999999", "is not a whole number from 0 to"),
])
def test_capture_refuses_pids_that_are_not_user_processes(tmp_path, capsys, monkeypatch, pid, msg):
    spy = SignalSpy(monkeypatch)
    out = tmp_path / "x.pages"
    rc = main(["capture", "--pid", pid, "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and err.count("\n") == 1 and "Traceback" not in err
    assert spy.sent == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("pid", [0, 1, -1, -12345, 1 << 40, True, "7"])
def test_library_check_refuses_before_any_signal(monkeypatch, pid):
    spy = SignalSpy(monkeypatch)
    with pytest.raises(InputError):
        cap.check_target(pid)
    with pytest.raises(InputError):
        with cap.stopped(pid):
            pass
    assert spy.sent == []


def test_capture_refuses_a_kernel_thread(tmp_path, capsys, monkeypatch):
    # the kernel's own flag, read independently of the code under test
    kthreads = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) > 1:
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[6]) & 0x00200000:
                        kthreads.append(int(d))
            except OSError:
                pass
    if not kthreads:
        pytest.skip("no kernel thread visible in this pid namespace")
    spy = SignalSpy(monkeypatch)
    pid = 2 if 2 in kthreads else kthreads[0]
    rc = main(["capture", "--pid", str(pid), "-o", str(tmp_path / "k.pages")])
    err = capsys.readouterr().err
    assert rc == 2 and "kernel thread" in err and err.count("\n") == 1
    assert spy.sent == [] and list(tmp_path.iterdir()) == []


def test_capture_refuses_itself_and_its_own_process_group(tmp_path, capsys, monkeypatch):
    spy = SignalSpy(monkeypatch)
    rc = main(["capture", "--pid", str(os.getpid()), "-o", str(tmp_path / "s.pages")])
    err = capsys.readouterr().err
    assert rc == 2 and "pagemerge itself" in err and err.count("\n") == 1
    p = child(own_session=False)                        # same process group as this test
    try:
        assert os.getpgid(p.pid) == os.getpgid(0)
        rc = main(["capture", "--pid", str(p.pid), "-o", str(tmp_path / "g.pages")])
        err = capsys.readouterr().err
        assert rc == 2 and "own process group" in err and err.count("\n") == 1
        assert state(p.pid) != "T"
    finally:
        reap(p)
    assert spy.sent == [] and list(tmp_path.iterdir()) == []


def test_capture_refuses_a_zombie_and_a_thread_id(tmp_path, capsys, monkeypatch):
    spy = SignalSpy(monkeypatch)
    z = subprocess.Popen(["true"], start_new_session=True)
    try:
        assert wait_state(z.pid, ("Z",)) == "Z"              # exited, not yet reaped
        rc = main(["capture", "--pid", str(z.pid), "-o", str(tmp_path / "z.pages")])
        err = capsys.readouterr().err
        assert rc == 2 and "zombie" in err and err.count("\n") == 1
    finally:
        z.wait()
    p = child(threads=1)
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{p.pid}/task") if int(t) != p.pid]
        assert tids
        rc = main(["capture", "--pid", str(tids[0]), "-o", str(tmp_path / "t.pages")])
        err = capsys.readouterr().err
        assert rc == 2 and f"thread of process {p.pid}" in err and err.count("\n") == 1
    finally:
        reap(p)
    assert spy.sent == [] and list(tmp_path.iterdir()) == []


def test_capture_checks_every_pid_before_stopping_any(tmp_path, capsys, monkeypatch):
    spy = SignalSpy(monkeypatch)
    p = child()
    try:
        rc = main(["capture", "--pid", str(p.pid), "--pid", "1", "-o", str(tmp_path / "m.pages")])
        assert rc == 2 and "1 is init" in capsys.readouterr().err
        rc = main(["capture", "--pid", str(p.pid), "--pid", str(p.pid), "-o", str(tmp_path / "m.pages")])
        assert rc == 2 and "more than once" in capsys.readouterr().err
    finally:
        reap(p)
    assert spy.sent == [] and list(tmp_path.iterdir()) == []


@needs_root
def test_capture_stops_a_running_process_and_resumes_it(tmp_path, monkeypatch):
    spy = SignalSpy(monkeypatch)
    seen_state = []
    real_read = cap._read_process

    def read(pid, sink, zp):
        seen_state.append(state(pid))                   # what the target is while it is read
        return real_read(pid, sink, zp)
    monkeypatch.setattr(cap, "_read_process", read)
    p = child(2)
    try:
        assert main(["capture", "--pid", str(p.pid), "-o", str(tmp_path / "r.pages")]) == 0
        assert seen_state == ["T"] and state(p.pid) != "T"
        assert spy.sent == [(p.pid, signal.SIGSTOP), (p.pid, signal.SIGCONT)]
        ps = PageSet.open(tmp_path / "r.pages")
        a = ps.array                                    # the child's pages: one 0x07 byte, the rest zero
        assert int((((a == 7).sum(1) == 1) & ((a == 0).sum(1) == PAGE_SIZE - 1)).sum()) >= 500
        assert os.stat(tmp_path / "r.pages").st_mode & 0o777 == 0o600
    finally:
        reap(p)


@needs_root
def test_capture_leaves_a_stopped_process_stopped(tmp_path, monkeypatch):
    p = child(2)
    try:
        _KILL(p.pid, signal.SIGSTOP)                     # the test's own child, stopped by the test
        assert wait_state(p.pid, ("T",)) == "T"
        spy = SignalSpy(monkeypatch)
        assert main(["capture", "--pid", str(p.pid), "-o", str(tmp_path / "s.pages")]) == 0
        assert spy.sent == []                           # neither SIGSTOP nor SIGCONT
        time.sleep(0.05)
        assert state(p.pid) == "T"
        assert len(PageSet.open(tmp_path / "s.pages")) >= 512
    finally:
        reap(p)


@needs_root
def test_capture_resumes_the_target_when_reading_fails(tmp_path, monkeypatch):
    def boom(pid, sink, zp):
        assert state(pid) == "T"
        raise KeyboardInterrupt                          # as SIGINT in the middle of the read
    monkeypatch.setattr(cap, "_read_process", boom)
    p = child()
    try:
        with pytest.raises(KeyboardInterrupt):
            cap.capture_pids([p.pid], tmp_path / "e.pages")
        assert state(p.pid) != "T" and list(tmp_path.iterdir()) == []
    finally:
        reap(p)


@needs_root
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_during_capture_resumes_the_target_and_removes_the_temp_file(tmp_path, sig):
    p = child(256)                                       # 64k touched pages: the capture takes seconds
    env = dict(MIN_ENV, PYTHONPATH=REPO)
    out = tmp_path / "big.pages"
    c = subprocess.Popen([sys.executable, "-m", "pagemerge", "capture", "--pid", str(p.pid), "-o", str(out)],
                         env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_state(p.pid, ("T",), timeout=30) == "T", c.stderr.read() if c.poll() is not None else ""
        time.sleep(0.2)                                  # well inside the read
        assert c.poll() is None, "the capture finished before the signal: make the child larger"
        c.send_signal(sig)
        _out, err = c.communicate(timeout=30)
        assert c.returncode != 0
        assert b"Traceback" not in err
        assert wait_state(p.pid, ("S", "R")) in ("S", "R")     # running again
        assert list(tmp_path.iterdir()) == []            # no temp file, no half-written output
    finally:
        if c.poll() is None:
            c.kill()
            c.wait()
        reap(p)
