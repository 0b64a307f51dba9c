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
import time

import numpy as np
import pytest

import engine
from engine.errors import InputError
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


# ---- 2. core files that lie about their sizes --------------------------------------------------
def _note(ntype: int, desc: bytes, descsz: int | None = None) -> bytes:
    name = b"CORE\0"
    return (struct.pack("<III", len(name), len(desc) if descsz is None else descsz, ntype) + name
            + b"\0" * (-len(name) % 4) + desc + b"\0" * (-len(desc) % 4))


def elf_core(path, loads=(), notes=b"", note_headers=1, data=b""):
    """An ELF64 little-endian core built by hand: ``note_headers`` PT_NOTE headers all pointing
    at ``notes``, then one PT_LOAD per ``(vaddr, offset in data, filesz)``; ``data`` starts at
    the first page boundary after the notes."""
    phnum = note_headers + len(loads)
    notes_off = 64 + 56 * phnum
    data_off = -(-(notes_off + len(notes)) // PAGE_SIZE) * PAGE_SIZE
    ph = b"".join(struct.pack("<IIQQQQQQ", 4, 0, notes_off, 0, 0, len(notes), 0, 1) for _ in range(note_headers))
    ph += b"".join(struct.pack("<IIQQQQQQ", 1, 6, data_off + off, va, 0, n, n, PAGE_SIZE) for va, off, n in loads)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 4, 62, 1, 0, 64, 0, 0, 64,
                       56, phnum, 64, 0, 0)
    img = ehdr + ph + notes
    path.write_bytes(img + bytes(data_off - len(img)) + data)
    return path


def run_cli(args, timeout=60):
    """The CLI in a child process under a time limit: (exit status, stderr, seconds)."""
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pagemerge", *args], env=dict(MIN_ENV, PYTHONPATH=REPO),
                       capture_output=True, text=True, timeout=timeout, cwd="/")
    return r.returncode, r.stderr, time.monotonic() - t


_PEAK = r"""
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
sys.exit(rc)
"""


def peak_rss(args, tmp_path):
    """Run ``pagemerge ARGS`` and return (exit status, stdout, stderr, peak RSS in bytes).

    The peak is measured by a small wrapper process: a child's ``ru_maxrss`` also counts the
    memory of the process it was forked from (the kernel keeps the high-water mark across
    exec), so measured straight from pytest it would include pytest's own size."""
    rec = tmp_path / ".peak"
    r = subprocess.run([sys.executable, "-S", "-c", _PEAK, str(rec), sys.executable, "-m", "pagemerge", *args],
                       env=dict(MIN_ENV, PYTHONPATH=REPO), cwd="/", capture_output=True, timeout=600)
    peak = int(rec.read_text())
    rec.unlink()
    return r.returncode, r.stdout, r.stderr.decode(errors="replace"), peak


def assert_one_line_refusal(rc, err, *needles):
    assert rc == 2 and err.count("\n") == 1 and err.startswith("pagemerge: ") and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_core_nt_file_claiming_2_to_40_entries_is_refused_at_once(tmp_path):
    desc = struct.pack("<QQ", 1 << 40, PAGE_SIZE) + struct.pack("<QQQ", 0x1000, 0x2000, 0) + b"/lib/x\0"
    core = elf_core(tmp_path / "c", loads=[(0x1000, 0, PAGE_SIZE)], notes=_note(0x46494C45, desc),
                    data=b"A" * PAGE_SIZE)
    out = tmp_path / "o.pages"
    rc, err, secs = run_cli(["capture", "--core", str(core), "-o", str(out)], timeout=30)
    assert_one_line_refusal(rc, err, str(core), f"claims {1 << 40} mapped files", "at most 1")
    assert secs < 20 and sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_core_with_20000_loads_on_one_page_is_refused_not_inflated(tmp_path):
    core = elf_core(tmp_path / "c", loads=[(0x10000000 + k * PAGE_SIZE, 0, PAGE_SIZE) for k in range(20000)],
                    data=b"B" * PAGE_SIZE)
    assert core.stat().st_size < 2 << 20                 # about 1 MiB of headers and one page
    out = tmp_path / "o.pages"
    rc, err, secs = run_cli(["capture", "--core", str(core), "-o", str(out)])
    assert_one_line_refusal(rc, err, str(core), "overlap in the file")
    assert secs < 30 and sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_core_segments_overlapping_in_memory_are_refused(tmp_path):
    core = elf_core(tmp_path / "c", loads=[(0x400000, 0, 2 * PAGE_SIZE), (0x401000, 2 * PAGE_SIZE, PAGE_SIZE)],
                    data=b"C" * 3 * PAGE_SIZE)
    rc, err, _ = run_cli(["capture", "--core", str(core), "-o", str(tmp_path / "o.pages")])
    assert_one_line_refusal(rc, err, "overlap in memory")


def test_core_note_headers_repeated_past_the_file_size_are_refused(tmp_path):
    prps = bytearray(136)
    notes = _note(3, bytes(prps)) * 400                  # about 60 KB of notes
    core = elf_core(tmp_path / "c", loads=[(0x1000, 0, PAGE_SIZE)], notes=notes, note_headers=5000,
                    data=b"D" * PAGE_SIZE)
    rc, err, secs = run_cli(["capture", "--core", str(core), "-o", str(tmp_path / "o.pages")])
    assert_one_line_refusal(rc, err, "PT_NOTE segments add up to more than the file")
    assert secs < 30


def test_core_note_running_past_its_segment_ends_the_walk(tmp_path):
    desc = bytes(136)
    notes = _note(3, desc, descsz=0xFFFFFF00)            # claims a 4 GiB descriptor
    core = elf_core(tmp_path / "c", loads=[(0x1000, 0, PAGE_SIZE)], notes=notes, data=b"E" * PAGE_SIZE)
    from engine.workloads.core import capture_core
    man = capture_core(str(core), str(tmp_path / "o.pages"))
    assert len(man) == 1 and PageSet.open(tmp_path / "o.pages")[0] == b"E" * PAGE_SIZE


def test_core_output_is_the_distinct_file_bytes_and_never_larger_than_the_core(tmp_path):
    # three segments of 1, 2 and 3 pages at distinct offsets: 6 pages, hand-counted
    data = b"".join(bytes([k]) * PAGE_SIZE for k in range(1, 7))
    core = elf_core(tmp_path / "c", loads=[(0x10000, 0, PAGE_SIZE), (0x20000, PAGE_SIZE, 2 * PAGE_SIZE),
                                           (0x30000, 3 * PAGE_SIZE, 3 * PAGE_SIZE)], data=data)
    out = tmp_path / "o.pages"
    from engine.workloads.core import capture_core
    man = capture_core(str(core), str(out))
    assert out.stat().st_size == 6 * PAGE_SIZE <= core.stat().st_size
    assert man.vaddr == [0x10000, 0x20000, 0x21000, 0x30000, 0x31000, 0x32000]
    assert out.read_bytes() == data


def test_core_with_many_mapped_files_is_read_in_near_linear_time(tmp_path):
    n_files, n_pages = 100_000, 2000
    starts = [0x7F0000000000 + k * 0x10000 for k in range(n_files)]
    desc = struct.pack("<QQ", n_files, PAGE_SIZE) + b"".join(struct.pack("<QQQ", s, s + 0x1000, 0) for s in starts) \
        + b"".join(b"/lib/f%d\0" % k for k in range(n_files))
    data = bytes(PAGE_SIZE * (n_pages + 1))
    core = elf_core(tmp_path / "c", loads=[(0x555000000000, 0, PAGE_SIZE * n_pages),
                                           (starts[500], PAGE_SIZE * n_pages, PAGE_SIZE)],
                    notes=_note(0x46494C45, desc), data=data)
    from engine.workloads.core import capture_core
    t = time.monotonic()
    man = capture_core(str(core), str(tmp_path / "o.pages"))
    assert time.monotonic() - t < 10                     # a linear scan per page took minutes
    assert len(man) == n_pages + 1 and man.region[-1] == "/lib/f500" and set(man.region[:-1]) == {"[anon]"}


# ---- 3. analyze on a huge sparse file: resident memory stays bounded ---------------------------
def test_analyze_of_a_2_gib_sparse_file_keeps_rss_bounded(tmp_path):
    # 2 GiB shows the bound as well as 20 would (without the release the peak is the whole
    # file, about 2.1 GB) and keeps CI time to the page cache's first fill of 2 GiB
    size = 2 << 30
    f = tmp_path / "sparse.pages"
    with open(f, "wb") as fh:
        fh.truncate(size)                                # a hole: every page reads as zeros
    rc, out, err, peak = peak_rss(["analyze", str(f), "--json"], tmp_path)
    assert rc == 0, err
    d = json.loads(out)
    assert d["pages"] == d["zero_pages"] == size // PAGE_SIZE      # the file is all zeros
    assert peak < 600 << 20, f"peak RSS {peak >> 20} MiB while analyzing a {size >> 30} GiB file"


def resident_pages(path) -> int:
    """Pages of ``path`` mapped in this process, from the kernel's /proc/self/smaps."""
    total, cur = 0, False
    with open("/proc/self/smaps") as sm:
        for line in sm:
            head = line.split()
            if head and "-" in head[0] and ":" not in head[0]:
                cur = line.rstrip("\n").endswith(" " + str(path))
            elif cur and head[0] == "Rss:":
                total += int(head[1]) * 1024 // PAGE_SIZE
    return total


def test_chunks_release_what_they_have_read(tmp_path):
    n, k = 16384, 256             # 64 MiB; the page cache may map up to a 2 MiB folio per fault
    f = tmp_path / "r.pages"
    f.write_bytes((np.arange(n) % 256).astype(np.uint8).repeat(PAGE_SIZE).tobytes())
    with PageSet.open(f) as ps:
        seen = []
        for start, chunk in ps.chunks(k):
            assert (chunk[:, 0] == (np.arange(start, start + len(chunk)) % 256)).all()   # the bytes as written
            seen.append(resident_pages(f))
            del chunk                                    # no view may outlive the mapping
        assert seen[0] >= k                              # the chunk being read is resident
        assert max(seen) <= n // 8 and resident_pages(f) <= n // 16     # earlier chunks are not
        assert [s for s, _c in ps.chunks(10, 20, 45)] == [20, 30, 40]
        assert sum(len(c) for _s, c in ps.chunks(10, 20, 45)) == 25
        assert bytes(ps.page(3)) == bytes([3]) * PAGE_SIZE        # a released page reads back the same
        assert int(ps.array[:, 0].astype(np.int64).sum()) == sum(i % 256 for i in range(n))
        assert resident_pages(f) == n                    # a plain pass over the array keeps everything


# ---- 4. generate streams -------------------------------------------------------------------------
@pytest.mark.parametrize("mix", ["all-unique", "android-swap", "identical-vms"])
def test_generate_bytes_do_not_depend_on_the_chunking(tmp_path, monkeypatch, mix):
    from engine.workloads import synthetic
    monkeypatch.setattr(synthetic, "BLOCK", 256)         # several blocks in a small set
    n = 1000
    outs = []
    for chunk in (1, 333, 5000):
        out = tmp_path / f"{chunk}.pages"
        synthetic.write_mix(mix, n, str(out), seed=11, chunk_pages=chunk)
        outs.append((out.read_bytes(), manifest_path(out).read_bytes()))
    assert outs[0] == outs[1] == outs[2]
    pages, man = synthetic.generate(mix, n, seed=11)       # the in-memory form, through Manifest.to_json
    assert outs[0][0] == pages.tobytes() and json.loads(outs[0][1]) == man.to_json()
    assert len(Manifest.load(manifest_path(tmp_path / "1.pages"), n)) == n
    other = synthetic.generate(mix, n, seed=12)[0]
    assert other.tobytes() != pages.tobytes()


def test_generate_keeps_the_mix_shape_across_blocks(monkeypatch):
    from engine.workloads import synthetic
    monkeypatch.setattr(synthetic, "BLOCK", 256)
    pages, man = synthetic.generate("identical-vms", 2000, seed=5)
    per, shared = 500, 350                               # 4 VMs of 2000 / 4 pages, 70% of each shared
    vms = [pages[v * per:(v + 1) * per] for v in range(4)]
    assert all(np.array_equal(vms[0][:shared], vm[:shared]) for vm in vms)
    assert len({pg.tobytes() for pg in pages}) == shared + 4 * (per - shared)     # the rest all distinct
    assert [p["pid"] for p in man.processes] == [2000, 2001, 2002, 2003]
    a, _ = synthetic.generate("android-swap", 4000, seed=5)
    zero = int((a == 0).all(axis=1).sum())
    repeats = 4000 - len({pg.tobytes() for pg in a})      # pages equal to an earlier one
    assert 0.045 < zero / 4000 < 0.075 and 0.15 < repeats / 4000 < 0.30       # ~6% zero, ~15% copies


def test_generate_streams_in_bounded_memory(tmp_path):
    n = 100_000                                          # 400 MB of pages; built whole it took 3x that
    out = tmp_path / "big.pages"
    rc, _out, err, peak = peak_rss(["generate", "all-unique", "-n", str(n), "-o", str(out)], tmp_path)
    assert rc == 0, err
    assert out.stat().st_size == n * PAGE_SIZE and len(Manifest.load(manifest_path(out), n)) == n
    assert peak < 350 << 20, f"peak RSS {peak >> 20} MiB"


@pytest.mark.parametrize("n,msg", [("0", "from 1 to 16777216"), (str((1 << 24) + 1), "from 1 to 16777216")])
def test_generate_page_count_is_bounded(tmp_path, capsys, n, msg):
    rc = main(["generate", "all-unique", "-n", n, "-o", str(tmp_path / "g.pages")])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and err.count("\n") == 1 and list(tmp_path.iterdir()) == []


# ---- 5. manifests: structure checked, one line ---------------------------------------------------
def _good_manifest() -> dict:
    return Manifest(source="t", processes=[{"pid": 7, "comm": "x", "cmdline": "", "pages": 2}],
                    pid=[7, 7], vaddr=[0x1000, 0x2000], region=["[anon]", "[heap]"]).to_json()


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(processes="abc"), "processes: expected a list of objects, got a string"),
    (lambda d: d.update(processes=["abc"]), "processes[0]: expected an object"),
    (lambda d: d["processes"][0].update(pid="7"), "processes[0].pid: expected a process id"),
    (lambda d: d["pages"].update(pid="77"), "pages.pid: expected a list"),
    (lambda d: d["pages"].update(vaddr={"a": 1}), "pages.vaddr: expected a list"),
    (lambda d: d["pages"].update(region=None), "pages.region: expected a list"),
    (lambda d: d["pages"].pop("vaddr"), "pages.vaddr: missing"),
    (lambda d: d.update(pages=[1, 2]), "pages: expected an object of columns"),
    (lambda d: d["pages"].update(vaddr=["0x1000", "zz"]), "pages.vaddr[1]: expected a page-aligned hexadecimal"),
    (lambda d: d["pages"].update(vaddr=["0x1000", 8192]), "pages.vaddr[1]: expected a page-aligned hexadecimal"),
    (lambda d: d["pages"].update(vaddr=["0x1000", "0x1001"]), "pages.vaddr[1]: expected a page-aligned"),
    (lambda d: d["pages"].update(vaddr=["0x1000", "0x" + "f" * 40]), "pages.vaddr[1]"),
    (lambda d: d["pages"].update(vaddr=["0x1000", "0x1000"]), "pid 7 has two pages at 0x1000"),
    (lambda d: d["pages"].update(pid=[7, True]), "pages.pid[1]: expected a process id"),
    (lambda d: d["pages"].update(pid=[7, -3]), "pages.pid[1]: expected a process id"),
    (lambda d: d["pages"].update(region=["a", 5]), "pages.region[1]: expected a string"),
    (lambda d: d["pages"].update(pid=[7]), "columns have different lengths"),
    (lambda d: d.update(notes="n"), "notes: expected a list of strings"),
    (lambda d: d.update(version=2), "unsupported manifest version"),
    (lambda d: d.update(page_size=8192), "page_size: must be 4096"),
])
def test_malformed_manifest_is_one_line(tmp_path, capsys, mutate, needle):
    f = tmp_path / "m.pages"
    f.write_bytes(bytes(2 * PAGE_SIZE))
    d = _good_manifest()
    assert Manifest.from_json(json.loads(json.dumps(d)), "ok", 2).vaddr == [0x1000, 0x2000]   # the base is valid
    mutate(d)
    manifest_path(f).write_text(json.dumps(d))
    for argv in (["analyze", str(f)], ["simulate", "ksm", str(f)]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and str(manifest_path(f)) in err, err
        assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("content,needle", [
    ("[" * 100000 + "]" * 100000, "malformed manifest JSON"),
    ('{"version": 1, "pages": {"pid": [' + "9" * 5000 + "]}}", "malformed manifest JSON"),
    ("\xff\xfe", "malformed manifest JSON"),
    ("[]", "expected a JSON object, got a list"),
])
def test_manifest_that_is_not_a_manifest_object(tmp_path, capsys, content, needle):
    f = tmp_path / "m.pages"
    f.write_bytes(bytes(PAGE_SIZE))
    manifest_path(f).write_text(content, encoding="latin-1")
    rc = main(["analyze", str(f)])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1, err


def test_manifest_that_is_a_directory_or_a_fifo(tmp_path, capsys):
    f = tmp_path / "m.pages"
    f.write_bytes(bytes(PAGE_SIZE))
    manifest_path(f).mkdir()
    rc = main(["analyze", str(f)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a directory" in err and err.count("\n") == 1
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    t = time.monotonic()
    rc = main(["simulate", "ksm", str(f), "--manifest", str(fifo)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a FIFO" in err and err.count("\n") == 1 and time.monotonic() - t < 10


# ---- 6. KSM traces that cannot be reached, runs that never converge -----------------------------
def _ksm_pages(tmp_path):
    f = tmp_path / "k.pages"
    f.write_bytes((b"A" * PAGE_SIZE) * 3 + (b"B" * PAGE_SIZE) * 2 + bytes(PAGE_SIZE))
    return f


def test_trace_line_that_can_never_be_reached_is_refused_at_once(tmp_path, capsys):
    f = _ksm_pages(tmp_path)
    tr = tmp_path / "t.trace"
    tr.write_text("# after_scan,page,offset,hexbytes\n2,0,0,ff\n1000000000,1,0,ee\n")
    t = time.monotonic()
    rc = main(["simulate", "ksm", str(f), "--trace", str(tr)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tr}: line 3: after_scan 1000000000 is more than" in err and err.count("\n") == 1
    assert time.monotonic() - t < 10
    from engine.scenario import KsmScenario
    with pytest.raises(InputError, match="after_scan 1000000000"):
        KsmScenario(pages=PageSet.open(f), trace=[(10 ** 9, 0, 0, b"x")])


def test_run_that_never_converges_ends_with_an_error_naming_the_trace_line(tmp_path, capsys, monkeypatch):
    import itertools
    import engine.ksm
    from engine import scenario
    ticks = itertools.count()
    monkeypatch.setattr(engine.ksm, "convergence_key", lambda counters, smart: next(ticks))   # always changing
    f = _ksm_pages(tmp_path)
    tr = tmp_path / "t.trace"
    tr.write_text("# a comment\n3,0,0,ff\n")
    scans = []
    real_full_scan = engine.ksm.Ksmd.full_scan

    def counted(self, *a, **k):
        scans.append(1)
        return real_full_scan(self, *a, **k)
    monkeypatch.setattr(engine.ksm.Ksmd, "full_scan", counted)
    t = time.monotonic()
    rc = main(["simulate", "ksm", str(f), "--trace", str(tr)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"did not converge within {scenario.CONVERGE_SCANS} full scans after trace line 2" in err
    assert len(scans) == 3 + scenario.CONVERGE_SCANS + 1 and time.monotonic() - t < 120
    scans.clear()
    rc = main(["simulate", "ksm", str(f), "--cow", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "after the start" in err and len(scans) == scenario.CONVERGE_SCANS + 1


def test_trace_writes_still_apply_and_converge(tmp_path, capsys):
    f = _ksm_pages(tmp_path)
    tr = tmp_path / "t.trace"
    tr.write_text("5,0,0,ff\n")
    assert main(["simulate", "ksm", str(f), "--trace", str(tr), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["writes"][0][:3] == [5, 0, 0] and d["full_scans_at"][0] > 5
    # pages 1, 2 stay equal ("A"), 3, 4 equal ("B"), page 0 now differs: 2 KSM pages shared by 4
    assert d["ksm"]["pages_shared"] == 2 and d["ksm"]["pages_sharing"] == 2


# ---- 7. numeric options: bounded before anything is built ----------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["simulate", "zram", "P", "--mem-limit", "99999999999999999999999"], "--mem-limit"),
    (["simulate", "zram", "P", "--mem-limit", "2000T"], "more than"),
    (["simulate", "zram", "P", "--mem-limit", "-5"], "--mem-limit"),
    (["simulate", "zram", "P", "--mem-limit", "１２"], "cannot parse"),
    (["simulate", "zram", "P", "--io-pages", "0"], "from 1 to"),
    (["simulate", "ksm", "P", "--max-page-sharing", "1"], "from 2 to"),
    (["simulate", "ksm", "P", "--max-page-sharing", "99999999999999999999"], "from 2 to"),
    (["simulate", "ksm", "P", "--smart-scan", "7"], "invalid choice"),
    (["simulate", "all", "P", "--swap-fraction", "nan"], "not a number from 0 to 1"),
    (["simulate", "all", "P", "--swap-fraction", "inf"], "not a number from 0 to 1"),
    (["simulate", "all", "P", "--swap-fraction", "-0.5"], "not a number from 0 to 1"),
    (["simulate", "all", "P", "--swap-fraction", "1e400"], "not a number from 0 to 1"),
    (["simulate", "all", "P", "--seed", str(1 << 63)], "--seed"),
    (["simulate", "all", "P", "--seed", "-1"], "--seed"),
    (["simulate", "all", "P", "--predetermined-size", "0"], "from 1 to 4096"),
    (["simulate", "all", "P", "--predetermined-size", "4097"], "from 1 to 4096"),
    (["simulate", "all", "P", "--predetermined-size", "٣"], "from 1 to 4096"),
    (["report", "P", "--swap-fraction", "nan", "-o", "OUT"], "not a number from 0 to 1"),
    (["generate", "all-unique", "-n", "99999999999999999999", "-o", "OUT"], "--pages"),
    (["generate", "all-unique", "-n", "1", "--seed", "1" * 30, "-o", "OUT"], "--seed"),
    (["capture", "--pid", "4194305", "-o", "OUT"], "--pid"),
])
def test_numeric_options_are_bounded_before_anything_is_built(tmp_path, capsys, monkeypatch, argv, needle):
    from engine.pages import PageSet as PS
    opened = []
    monkeypatch.setattr(PS, "open", classmethod(lambda cls, p: opened.append(p)))     # nothing may be built
    pages = tmp_path / "p.pages"
    pages.write_bytes(bytes(PAGE_SIZE))
    argv = [str(pages) if x == "P" else str(tmp_path / "out") if x == "OUT" else x for x in argv]
    t = time.monotonic()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert opened == [] and sorted(p.name for p in tmp_path.iterdir()) == ["p.pages"]
    assert time.monotonic() - t < 10


def test_numeric_options_in_range_are_accepted(tmp_path, capsys):
    pages = tmp_path / "p.pages"
    pages.write_bytes(b"x" * PAGE_SIZE * 4)
    assert main(["simulate", "zram", str(pages), "--mem-limit", "64K", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mm_stat"]["mem_limit"] == 64 * 1024
    assert main(["simulate", "all", str(pages), "--swap-fraction", "0.5", "--mechanisms", "ksm",
                 "--predetermined-size", "4096", "--seed", str((1 << 63) - 1), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["workload"]["swap_fraction"] == 0.5


# ---- capture: the slow and the old-kernel paths ------------------------------------------------
@needs_root
def test_a_stop_that_never_takes_effect_times_out_and_resumes(tmp_path, capsys, monkeypatch):
    real = cap.task_stat

    def uninterruptible(pid):                            # as a task stuck in D state would look
        st = real(pid)
        st.state = "D" if st.state in ("T", "R", "S") else st.state
        return st
    monkeypatch.setattr(cap, "task_stat", uninterruptible)
    monkeypatch.setattr(cap, "STOP_TIMEOUT", 0.3)
    p = child()
    try:
        spy = SignalSpy(monkeypatch)
        t = time.monotonic()
        rc = main(["capture", "--pid", str(p.pid), "-o", str(tmp_path / "d.pages")])
        err = capsys.readouterr().err
        assert rc == 2 and "did not stop within 0.3 s (state D)" in err and err.count("\n") == 1
        assert time.monotonic() - t < 10
        assert spy.sent == [(p.pid, signal.SIGSTOP), (p.pid, signal.SIGCONT)]
        assert wait_state(p.pid, ("S", "R")) in ("S", "R") and list(tmp_path.iterdir()) == []
    finally:
        reap(p)


@needs_root
def test_capture_without_pidfd_signals_by_pid(tmp_path, monkeypatch):
    def no_pidfd(pid, *a):
        raise OSError(38, "Function not implemented")    # a kernel before 5.3
    monkeypatch.setattr(cap.os, "pidfd_open", no_pidfd, raising=False)
    sent = []
    real_kill = os.kill

    def kill(pid, sig):
        assert pid > 1
        sent.append((pid, sig))
        return real_kill(pid, sig)
    monkeypatch.setattr(cap.os, "kill", kill)
    p = child()
    try:
        assert main(["capture", "--pid", str(p.pid), "-o", str(tmp_path / "k.pages")]) == 0
        assert sent == [(p.pid, signal.SIGSTOP), (p.pid, signal.SIGCONT)] and state(p.pid) != "T"
    finally:
        reap(p)
