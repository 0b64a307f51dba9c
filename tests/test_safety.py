"""Every command against a table of bad inputs: one line, exit 2, nothing written, no hang.

Each case runs ``pagemerge`` in a forked child (tests/isolated.py) under a time limit, with a
fresh working folder. It must exit with status 2, print exactly one line on stderr starting
``pagemerge: `` (no traceback) and nothing on stdout, and leave every file in the test's
folder exactly as it was (no new file, no temporary debris, no replaced device or link).
The permission cases run the same way with the child's privileges dropped to ``nobody``.
"""
from __future__ import annotations

import json
import os
import stat
import struct

import pytest

from tests import isolated

isolated.warm_imports()

PAGE = 4096


def _snapshot(root: str) -> dict:
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            snap[os.path.relpath(p, root)] = (kind, st.st_size if stat.S_ISREG(st.st_mode) else 0,
                                             st.st_mtime_ns if stat.S_ISREG(st.st_mode) else 0,
                                             os.readlink(p) if stat.S_ISLNK(st.st_mode) else "")
    return snap


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A folder of good and bad inputs."""
    root = tmp_path_factory.mktemp("bad")
    good = bytearray()
    for i in range(8):
        good += bytes([i]) * 8 + bytes(range(256)) * 15 + os.urandom(PAGE - 8 - 3840)
    (root / "good.pages").write_bytes(good)
    (root / "empty.pages").write_bytes(b"")
    (root / "truncated.pages").write_bytes(b"\1" * (PAGE - 1))
    (root / "a-dir").mkdir()
    os.mkfifo(root / "fifo")
    os.symlink(root / "fifo", root / "link-to-fifo")
    os.symlink(root / "loop-b", root / "loop-a")
    os.symlink(root / "loop-a", root / "loop-b")
    (root / "existing.pages").write_bytes(b"keep me")
    os.symlink(root / "existing.pages", root / "link-to-existing")
    (root / "text.txt").write_text("hello\n")
    (root / "trace-bad.csv").write_text("2,0,zero,ff\n")
    (root / "trace-far.csv").write_text("1000000000,0,0,ff\n")
    (root / "trace-page.csv").write_text("1,99,0,ff\n")
    (root / "trace-bin.csv").write_bytes(b"\xff\xfe\x00\x81" * 10)
    man = {"version": 1, "page_size": PAGE, "source": "t", "processes": "abc",
           "pages": {"pid": [1] * 8, "comm": [""] * 8, "vaddr": [hex(0x1000 * i) for i in range(8)],
                     "region": ["[anon]"] * 8}}
    (root / "man-procs.json").write_text(json.dumps(man))
    man2 = dict(man, processes=[], pages=dict(man["pages"], vaddr=["zz"] * 8))
    (root / "man-vaddr.json").write_text(json.dumps(man2))
    (root / "man-list.json").write_text("[1, 2, 3]")
    (root / "man-short.json").write_text(json.dumps(dict(man, processes=[], pages=dict(man["pages"], pid=[1]))))
    (root / "chart-bad.yaml").write_text("patent: US9977598\nrows: [unclosed\n")
    (root / "chart-list.yaml").write_text("- 1\n- 2\n")
    from claims.store import DATA
    chart = (DATA / "US9977598" / "chart.yaml").read_text()
    (root / "chart-traversal.yaml").write_text(chart.replace('patent: "US9977598"', 'patent: "../../../../tmp/x"', 1))
    (root / "notelf").write_bytes(b"\x7fELX" + b"\0" * 100)
    (root / "elf-exec").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHI", 2, 62, 1) + b"\0" * 200)
    (root / "core-trunc").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0,
                                                                                        64, 0, 0, 64, 56, 500, 0, 0, 0)[:48])
    (root / "garbage.xml").write_bytes(b"<?xml version='1.0'?><us-patent-grant><claims><claim")
    return root


# (id, argv with {d} for the folder, a piece of the one-line message)
CASES = [
    # page-set inputs, in every command that reads one
    *[(f"{cmd[0]}-{cmd[1] if len(cmd) > 1 else ''}-{kind}", [*cmd, f"{{d}}/{name}"], msg)
      for cmd in (["simulate", "zram"], ["simulate", "ksm"], ["simulate", "all"], ["analyze"], ["report"])
      for kind, name, msg in (("missing", "nope.pages", "no such"), ("empty", "empty.pages", "empty"),
                              ("truncated", "truncated.pages", "not a multiple of 4096"),
                              ("dir", "a-dir", "directory"), ("fifo", "fifo", "FIFO"),
                              ("link-fifo", "link-to-fifo", "FIFO"), ("loop", "loop-a", "symbolic links"))],
    ("zram-dev-zero", ["simulate", "zram", "/dev/zero"], "character device"),
    ("analyze-dev-zero", ["analyze", "/dev/zero"], "character device"),
    # LIST and numbers
    ("discard-far", ["simulate", "zram", "{d}/good.pages", "--discard", "99999999"], "page set has 8 pages"),
    ("discard-huge-range", ["simulate", "zram", "{d}/good.pages", "--discard", "0-999999999"], "page set has 8 pages"),
    ("discard-overflow", ["simulate", "zram", "{d}/good.pages", "--discard", "99999999999999999999"], "too large"),
    ("discard-negative", ["simulate", "zram", "{d}/good.pages", "--discard", "-3"], "cannot parse"),
    ("discard-reversed", ["simulate", "zram", "{d}/good.pages", "--discard", "5-1"], "bad range"),
    ("discard-many", ["simulate", "zram", "{d}/good.pages", "--discard", ",".join(["0-7"] * 5)], "operations"),
    ("overwrite-alone", ["simulate", "zram", "{d}/good.pages", "--overwrite", "1"], "--overwrite"),
    ("overwrite-with-alone", ["simulate", "zram", "{d}/good.pages", "--overwrite-with", "{d}/good.pages"],
     "--overwrite"),
    ("overwrite-with-fifo", ["simulate", "zram", "{d}/good.pages", "--overwrite", "1", "--overwrite-with",
                             "{d}/fifo"], "FIFO"),
    ("mem-limit-words", ["simulate", "zram", "{d}/good.pages", "--mem-limit", "lots"], "--mem-limit"),
    ("mem-limit-huge", ["simulate", "zram", "{d}/good.pages", "--mem-limit", "9" * 5000], "--mem-limit"),
    ("algo-unknown", ["simulate", "zram", "{d}/good.pages", "--algo", "zstd\x7f"], "--algo"),
    ("cow-far", ["simulate", "ksm", "{d}/good.pages", "--cow", "8"], "page set has 8 pages"),
    ("mps-one", ["simulate", "ksm", "{d}/good.pages", "--max-page-sharing", "1"], "--max-page-sharing"),
    ("mps-huge", ["simulate", "ksm", "{d}/good.pages", "--max-page-sharing", "9" * 5000], "--max-page-sharing"),
    ("smart-scan-2", ["simulate", "ksm", "{d}/good.pages", "--smart-scan", "2"], "--smart-scan"),
    ("swap-fraction-nan", ["simulate", "all", "{d}/good.pages", "--swap-fraction", "nan"], "--swap-fraction"),
    ("swap-fraction-2", ["simulate", "all", "{d}/good.pages", "--swap-fraction", "2"], "--swap-fraction"),
    ("seed-negative", ["simulate", "all", "{d}/good.pages", "--seed", "-1"], "--seed"),
    ("seed-huge", ["simulate", "all", "{d}/good.pages", "--seed", "9" * 100], "--seed"),
    ("mechanism-unknown", ["simulate", "all", "{d}/good.pages", "--mechanisms", "ksm,nope"], "nope"),
    ("predetermined-0", ["simulate", "all", "{d}/good.pages", "--predetermined-size", "0"], "--predetermined-size"),
    ("predetermined-big", ["simulate", "all", "{d}/good.pages", "--predetermined-size", "99999"],
     "--predetermined-size"),
    ("manifest-both", ["simulate", "all", "{d}/good.pages", "--manifest", "{d}/man-procs.json", "--no-manifest"],
     "exclude"),
    # traces and manifests
    *[(f"trace-{kind}", ["simulate", "ksm", "{d}/good.pages", "--trace", path], msg)
      for kind, path, msg in (("missing", "{d}/nope.csv", "no such"), ("dir", "{d}/a-dir", "directory"),
                              ("fifo", "{d}/fifo", "FIFO"), ("dev-zero", "/dev/zero", "character device"),
                              ("bad-line", "{d}/trace-bad.csv", "line 1"), ("binary", "{d}/trace-bin.csv", "trace"),
                              ("page-out-of-range", "{d}/trace-page.csv", "out of range"),
                              ("never-reached", "{d}/trace-far.csv", "scan"))],
    *[(f"manifest-{kind}", ["simulate", "all", "{d}/good.pages", "--manifest", path], msg)
      for kind, path, msg in (("missing", "{d}/nope.json", "no such"), ("dir", "{d}/a-dir", "directory"),
                              ("fifo", "{d}/fifo", "FIFO"), ("dev-zero", "/dev/zero", "character device"),
                              ("not-json", "{d}/text.txt", "malformed"), ("procs-string", "{d}/man-procs.json",
                                                                           "processes"),
                              ("vaddr", "{d}/man-vaddr.json", "malformed"), ("list", "{d}/man-list.json", "object"),
                              ("short", "{d}/man-short.json", "lengths"))],
    # outputs: never replace a device, a directory or a link; never overwrite without --force
    *[(f"generate-o-{kind}", ["generate", "all-unique", "-n", "8", "-o", path], msg)
      for kind, path, msg in (("dev-null", "/dev/null", "character device"), ("dir", "{d}/a-dir", "directory"),
                              ("fifo", "{d}/fifo", "FIFO"), ("symlink", "{d}/link-to-existing", "symbolic link"),
                              ("existing", "{d}/existing.pages", "--force"),
                              ("parent-is-file", "{d}/text.txt/x.pages", "not a directory"))],
    ("generate-n-0", ["generate", "all-unique", "-n", "0", "-o", "{d}/n0.pages"], "--pages"),
    ("generate-n-huge", ["generate", "all-unique", "-n", "9" * 30, "-o", "{d}/nh.pages"], "--pages"),
    ("generate-mix", ["generate", "nope", "-o", "{d}/x.pages"], "mix"),
    ("report-o-file", ["report", "-o", "{d}/text.txt"], "text.txt"),
    # capture: pids that are not user processes, core files that are not cores
    *[(f"capture-pid-{pid}", ["capture", "--pid", pid, "-o", "{d}/cap.pages"], msg)
      for pid, msg in (("0", "pid 0"), ("1", "pid 1"), ("-1", "--pid"), ("2", "pid 2"), ("4194304", "no such"),
                       ("999999999999", "--pid"))],
    ("capture-neither", ["capture", "-o", "{d}/cap.pages"], "--pid"),
    *[(f"capture-core-{kind}", ["capture", "--core", path, "-o", "{d}/core.pages"], msg)
      for kind, path, msg in (("missing", "{d}/nope.core", "no such"), ("dir", "{d}/a-dir", "directory"),
                              ("fifo", "{d}/fifo", "FIFO"), ("dev-zero", "/dev/zero", "character device"),
                              ("empty", "{d}/empty.pages", "empty"), ("not-elf", "{d}/notelf", "not an ELF"),
                              ("exec", "{d}/elf-exec", "not a core"), ("truncated", "{d}/core-trunc", "truncated"))],
    ("capture-core-o-dev-null", ["capture", "--core", "{d}/notelf", "-o", "/dev/null"], ""),
    # claims
    *[(f"claims-import-{kind}", ["claims", "import", path], msg)
      for kind, path, msg in (("missing", "{d}/nope.xml", "no such"), ("dir", "{d}/a-dir", "directory"),
                              ("fifo", "{d}/fifo", "FIFO"), ("dev-zero", "/dev/zero", "character device"),
                              ("empty", "{d}/empty.pages", "empty"), ("malformed-xml", "{d}/garbage.xml", "XML"))],
    *[(f"claims-check-{kind}", ["claims", "check", path], msg)
      for kind, path, msg in (("missing", "{d}/nope.yaml", "no such"), ("dir", "{d}/a-dir", "directory"),
                              ("fifo", "{d}/fifo", "FIFO"), ("malformed", "{d}/chart-bad.yaml", "YAML"),
                              ("list", "{d}/chart-list.yaml", "mapping"),
                              ("patent-traversal", "{d}/chart-traversal.yaml", "not a patent number"))],
    ("claims-show-unknown", ["claims", "show", "US1"], "US1"),
    ("report-chart-fifo", ["report", "--chart", "{d}/fifo"], "FIFO"),
    ("report-patent-unknown", ["report", "--patent", "US1"], "US1"),
    # the other verbs
    ("study-fifo", ["study", "{d}/fifo", "-o", "study-out"], "FIFO"),
    ("study-o-dev-null", ["study", "{d}/good.pages", "-o", "/dev/null"], "/dev/null"),
    ("study-o-file", ["study", "{d}/good.pages", "-o", "{d}/text.txt"], "text.txt"),
    ("combine-bad-pair", ["combine", "ksm", "zram_dedup", "{d}/good.pages"], "ksm"),
    ("combine-fifo", ["combine", "esx_2002", "zram_3_14", "{d}/fifo"], "FIFO"),
    ("construe-unknown-patent", ["construe", "US1", "{d}/good.pages"], "US1"),
    ("construe-bad-grid", ["construe", "US9977598", "{d}/good.pages", "--grid", "nope=1"], "nope"),
    ("construe-truncated", ["construe", "US9977598", "{d}/truncated.pages"], "not a multiple of 4096"),
    ("construction-unknown", ["simulate", "all", "{d}/good.pages", "--construction", "mapping=teleport"], "teleport"),
    # usage errors are one line too
    ("no-command", [], "COMMAND"),
    ("unknown-command", ["frobnicate"], "frobnicate"),
    ("unknown-option", ["analyze", "{d}/good.pages", "--frob"], "--frob"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, d, tmp_path):
    _id, argv, msg = case
    argv = [a.replace("{d}", str(d)) for a in argv]
    before = _snapshot(str(d))
    work = tmp_path / "work"
    work.mkdir()
    r = isolated.run(argv, timeout=60, cwd=str(work))
    assert r.rc is not None, f"still running after {r.seconds:.0f} s (killed)"
    assert r.rc == 2, (r.rc, r.err[-2000:])
    assert "Traceback" not in r.err
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pagemerge: "), r.err
    assert msg in lines[0], lines[0]
    assert r.out == ""
    assert _snapshot(str(d)) == before, "the inputs' folder changed"
    assert list(work.iterdir()) == [], f"files were written: {list(work.iterdir())}"
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_force_replaces_a_regular_file_but_never_a_link(tmp_path):
    target = tmp_path / "out.pages"
    target.write_bytes(b"old")
    r = isolated.run(["generate", "all-unique", "-n", "4", "-o", str(target), "--force"], cwd=str(tmp_path))
    assert r.rc == 0, r.err
    assert target.stat().st_size == 4 * PAGE
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, tmp_path / "link.pages")
    r = isolated.run(["generate", "all-unique", "-n", "4", "-o", str(tmp_path / "link.pages"), "--force"],
                     cwd=str(tmp_path))
    assert r.rc == 2 and "symbolic link" in r.err
    assert victim.read_bytes() == b"precious" and os.path.islink(tmp_path / "link.pages")


def test_sigterm_leaves_no_temporary_file(tmp_path):
    """A write interrupted by SIGTERM removes its temporary file, and a stale one left by a
    killed writer (its pid gone) is removed by the next run."""
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "big.pages"
    p = subprocess.Popen([sys.executable, "-m", "pagemerge", "generate", "all-unique", "-n", "200000", "-o", str(out)],
                         cwd=tmp_path, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(n.name.endswith(".pagemerge-tmp") for n in tmp_path.iterdir()):
        time.sleep(0.02)
    assert any(n.name.endswith(".pagemerge-tmp") for n in tmp_path.iterdir()), "the writer never started"
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 128 + signal.SIGTERM
    assert sorted(n.name for n in tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    # a stale temporary file of a dead writer (pid beyond pid_max) is cleaned by the next run
    stale = tmp_path / ".small.pages.4194305.abcd.pagemerge-tmp"
    stale.write_bytes(b"x")
    live = tmp_path / f".small.pages.{os.getpid()}.abcd.pagemerge-tmp"      # a live writer's: kept
    live.write_bytes(b"x")
    r = isolated.run(["generate", "all-unique", "-n", "2", "-o", str(tmp_path / "small.pages")], cwd=str(tmp_path))
    assert r.rc == 0, r.err
    assert not stale.exists() and live.exists()


def test_report_replaces_its_own_output_but_not_another_file(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "report-US9977598.html").write_text("<html>someone else's page</html>")
    r = isolated.run(["report", "--mechanisms", "upstream_zram", "-o", str(out)], cwd=str(tmp_path), timeout=300)
    assert r.rc == 2 and "--force" in r.err, r.err
    assert (out / "report-US9977598.html").read_text() == "<html>someone else's page</html>"
    (out / "report-US9977598.html").unlink()
    for _ in range(2):                      # the second run replaces the first run's report
        r = isolated.run(["report", "--mechanisms", "upstream_zram", "-o", str(out)], cwd=str(tmp_path), timeout=300)
        assert r.rc == 0, r.err
    names = sorted(p.name for p in out.iterdir())
    assert "report-US9977598.html" in names and "chart-US9977598.csv" in names
    assert not [n for n in names if n.startswith(".")], names        # no temporary debris


# ---- as an unprivileged user ------------------------------------------------------------------
@pytest.fixture
def unprivileged_ok():
    if os.geteuid() != 0:
        pytest.skip("dropping to nobody needs root (these cases run as root in CI)")


@pytest.fixture
def open_dir():
    """A root-owned folder that everyone may enter but only root may write (pytest's own
    temporary folders are private to root, so nobody could not even look inside them)."""
    import shutil
    import tempfile
    path = tempfile.mkdtemp(prefix="pagemerge-perm-", dir="/tmp")
    os.chmod(path, 0o755)
    yield __import__("pathlib").Path(path)
    shutil.rmtree(path)


def test_nobody_cannot_use_the_kernel(unprivileged_ok, open_dir):
    pages = open_dir / "good.pages"
    pages.write_bytes(b"\1" * PAGE * 4)
    os.chmod(pages, 0o644)
    before = _snapshot("/sys/block/zram0") if os.path.exists("/sys/block/zram0") else None
    for cmd in (["kernel", "zram"], ["compare", "zram"], ["kernel", "ksm"], ["compare", "ksm"]):
        r = isolated.run([*cmd, str(pages)], uid=isolated.NOBODY, cwd="/")
        assert r.rc == 2 and r.err.count("\n") == 1 and "needs root" in r.err, (cmd, r.err)
    if before is not None:
        assert _snapshot("/sys/block/zram0").keys() == before.keys()


def test_nobody_cannot_read_a_private_file(unprivileged_ok, open_dir):
    secret = open_dir / "secret.pages"
    secret.write_bytes(b"\1" * PAGE)
    os.chmod(secret, 0o600)
    r = isolated.run(["analyze", str(secret)], uid=isolated.NOBODY, cwd="/")
    assert r.rc == 2 and r.err.count("\n") == 1 and "permission denied" in r.err, r.err


def test_nobody_cannot_write_into_a_root_folder(unprivileged_ok, open_dir):
    r = isolated.run(["generate", "all-unique", "-n", "2", "-o", str(open_dir / "x.pages")], uid=isolated.NOBODY,
                     cwd="/")
    assert r.rc == 2 and r.err.count("\n") == 1 and "cannot write" in r.err, r.err
    assert list(open_dir.iterdir()) == []


def test_nobody_cannot_capture_a_root_process(unprivileged_ok, open_dir):
    import subprocess
    import sys
    tmp_path = open_dir
    os.chmod(tmp_path, 0o777)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        r = isolated.run(["capture", "--pid", str(child.pid), "-o", str(tmp_path / "c.pages")], uid=isolated.NOBODY,
                         cwd="/")
        assert r.rc == 2 and r.err.count("\n") == 1, r.err
        assert list(tmp_path.iterdir()) == []
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] != "T"      # not left stopped
    finally:
        child.kill()
        child.wait()


def test_captured_memory_is_private(tmp_path):
    """Captured memory and its manifest are written 0600 (here from a core file)."""
    from tests.test_workloads import make_core           # a small ELF core built by the tests
    core = tmp_path / "t.core"
    make_core(core, [(0x555000, b"\x01" * PAGE * 2)])
    out = tmp_path / "c.pages"
    r = isolated.run(["capture", "--core", str(core), "-o", str(out)], cwd=str(tmp_path))
    assert r.rc == 0, r.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "c.pages.json").stat().st_mode) == 0o600


def test_the_kernel_mark_is_enforced(tmp_path):
    """A test asking for the live kernel without the kernel mark is refused at collection;
    one reaching it some other way fails; a marked one is let through."""
    import shutil
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(here, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_fixture.py").write_text("def test_x(live_zram):\n    pass\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(here))
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    r = subprocess.run([*args, str(tmp_path / "test_fixture.py")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode != 0 and "without @pytest.mark.kernel" in r.stdout + r.stderr
    (tmp_path / "test_fixture.py").unlink()
    (tmp_path / "test_direct.py").write_text(
        "import pytest\nfrom engine.kernel.zram0 import KernelZram\n"
        "def test_unmarked():\n    with KernelZram(4096 * 16):\n        pass\n"
        "@pytest.mark.kernel\ndef test_marked(monkeypatch):\n"
        "    import engine.kernel.safety as s\n    assert s.kernel_lock.__name__ == 'kernel_lock'\n")
    r = subprocess.run([*args, "-m", "not kernel", str(tmp_path / "test_direct.py")], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert "1 failed" in r.stdout and "lacks @pytest.mark.kernel" in r.stdout, r.stdout[-2000:]
    r = subprocess.run([*args, "-m", "kernel", str(tmp_path / "test_direct.py")], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert "1 passed" in r.stdout, r.stdout[-2000:]


def test_simulate_all_exits_1_when_a_read_back_fails(d, monkeypatch, capsys):
    """A mechanism that loses data makes ``simulate all`` fail (exit 1, one line naming it)."""
    from engine.mechanisms.base import Mechanism
    from pagemerge.cli import main
    real = Mechanism.verify
    monkeypatch.setattr(Mechanism, "verify", lambda self: False if self.name == "zram_merge" else real(self))
    rc = main(["simulate", "all", str(d / "good.pages"), "--mechanisms", "upstream_zram,zram_merge"])
    out, err = capsys.readouterr()
    assert rc == 1 and "LOST DATA" in out
    assert err.count("\n") == 1 and "zram_merge" in err and "upstream_zram" not in err
    monkeypatch.setattr(Mechanism, "verify", real)
    assert main(["simulate", "all", str(d / "good.pages"), "--mechanisms", "upstream_zram,zram_merge"]) == 0


def test_report_from_a_live_capture_leaves_no_copy(unprivileged_ok, tmp_path):
    """``report --pid`` captures into a private temporary folder and removes it afterwards."""
    import glob
    import subprocess
    import sys
    import tempfile
    child = subprocess.Popen([sys.executable, "-c", "b = bytearray(range(256)) * 4096; import time; time.sleep(120)"],
                             start_new_session=True)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "pagemerge-capture-*")))
    try:
        import time
        time.sleep(0.5)
        r = isolated.run(["report", "--pid", str(child.pid), "--mechanisms", "upstream_zram,zram_dedup", "-o",
                          str(tmp_path / "r")], cwd=str(tmp_path), timeout=300)
        assert r.rc == 0, r.err
        assert (tmp_path / "r" / "report-US9977598.html").exists()
        assert set(glob.glob(os.path.join(tempfile.gettempdir(), "pagemerge-capture-*"))) == before
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] != "T"      # resumed
    finally:
        child.kill()
        child.wait()


def test_nobody_cannot_read_a_private_chart(unprivileged_ok, open_dir):
    import shutil
    from claims.store import DATA
    chart = open_dir / "chart.yaml"
    shutil.copy(DATA / "US9977598" / "chart.yaml", chart)
    os.chmod(chart, 0o600)
    r = isolated.run(["claims", "check", str(chart)], uid=isolated.NOBODY, cwd="/")
    assert r.rc == 2 and r.err.count("\n") == 1 and "permission denied" in r.err, r.err


def test_a_refused_report_output_leaves_no_partial_set(tmp_path):
    """With someone else's chart CSV in the folder, nothing at all is written (not the HTML
    before the refusal), and a foreign report file is refused before any work."""
    out = tmp_path / "r"
    out.mkdir()
    (out / "chart-US9977598.csv").write_text("someone,else\n")
    r = isolated.run(["report", "--mechanisms", "upstream_zram", "-o", str(out)], cwd=str(tmp_path), timeout=300)
    assert r.rc == 2 and "chart-US9977598.csv" in r.err and "--force" in r.err, r.err
    assert sorted(p.name for p in out.iterdir()) == ["chart-US9977598.csv"]
    (out / "chart-US9977598.csv").unlink()
    (out / "report-US9977598.html").write_text("<html>theirs</html>")
    r = isolated.run(["report", "--mechanisms", "upstream_zram", "-o", str(out)], cwd=str(tmp_path), timeout=300)
    assert r.rc == 2 and r.seconds < 20 and "report-US9977598.html" in r.err, (r.seconds, r.err)
