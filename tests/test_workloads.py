"""Real memory as input: live capture, core files, synthetic mixes, the content profile."""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from pagemerge.cli import main
from engine.errors import PagemergeError
from engine.pages import PAGE_SIZE, PageSet
from engine.workloads.analyze import analyze
from engine.workloads.core import capture_core
from engine.workloads.manifest import Manifest, manifest_path
from engine.workloads.synthetic import generate
from tests.pagesets import MIN_ENV

MARKER = r"""
import sys
buf = bytearray(4096 * 40)
for i in range(40):
    buf[i * 4096:(i + 1) * 4096] = (b"PAGEMERGE-MARK-%03d-" % i) * 170 + bytes(4096 - 170 * 19)
print("ready", flush=True)
sys.stdin.read()
"""


def start_marker_process():
    p = subprocess.Popen([sys.executable, "-S", "-c", MARKER], env=MIN_ENV, cwd="/", stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, start_new_session=True)   # capture refuses its own group
    assert p.stdout.readline().startswith(b"ready")
    return p


def marker_ids(ps):
    import re
    return {int(m) for i in range(len(ps)) for m in re.findall(rb"PAGEMERGE-MARK-(\d{3})-", ps[i])}


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's memory needs root")


@needs_root
def test_capture_live_process(tmp_path):
    p = start_marker_process()
    try:
        out = tmp_path / "cap.pages"
        assert main(["capture", "--pid", str(p.pid), "-o", str(out)]) == 0
        assert state(p.pid) != "T"                                   # resumed
        ps = PageSet.open(out)
        man = Manifest.load(manifest_path(out), len(ps))
        assert set(man.pid) == {p.pid} and man.processes[0]["comm"].startswith("python")
        marked = {i: ps[i] for i in range(len(ps)) if b"PAGEMERGE-MARK-" in ps[i]}
        assert marker_ids(ps) == set(range(40))                      # every marked page's bytes
        with open(f"/proc/{p.pid}/maps") as f:
            spans = [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in f]
        for i in marked:
            va = man.vaddr[i]
            assert va % PAGE_SIZE == 0 and any(a <= va < b for a, b in spans)
            assert man.region[i] in ("[heap]", "[anon]", "[stack]")   # private anonymous only
        assert "[stack]" in man.region
    finally:
        p.kill()
        p.wait()


@needs_root
def test_capture_resumes_the_process_on_error(tmp_path, monkeypatch):
    import engine.workloads.capture as cap
    p = start_marker_process()
    try:
        def boom(pid):
            raise PagemergeError("injected failure")
        monkeypatch.setattr(cap, "private_anon_mappings", boom)
        out = tmp_path / "x.pages"
        with pytest.raises(PagemergeError):
            cap.capture_pids([p.pid], out)
        assert state(p.pid) != "T"
        assert list(tmp_path.iterdir()) == []                         # nothing half-written
    finally:
        p.kill()
        p.wait()


def test_capture_vanished_pid_is_a_clear_error(tmp_path, capsys):
    p = subprocess.Popen(["true"])
    p.wait()
    rc = main(["capture", "--pid", str(p.pid), "-o", str(tmp_path / "v.pages")])
    err = capsys.readouterr().err
    assert rc == 2 and f"pid {p.pid}: no such process" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_capture_without_privilege_names_what_is_missing(tmp_path, monkeypatch, capsys):
    import engine.workloads.capture as cap

    def denied(self, sig):
        raise PermissionError
    monkeypatch.setattr(cap._Target, "signal", denied)
    p = start_marker_process()
    try:
        rc = main(["capture", "--pid", str(p.pid), "-o", str(tmp_path / "d.pages")])
        assert rc == 2 and "needs root" in capsys.readouterr().err
        assert state(p.pid) != "T" and list(tmp_path.iterdir()) == []
    finally:
        p.kill()
        p.wait()


# ---- core files ----------------------------------------------------------------------------
def make_core(path, segments, pid=4242, comm=b"fakeproc", files=(), truncate_to=None, e_type=4):
    """A minimal ELF64 core: a PT_NOTE (NT_PRPSINFO, NT_FILE) and one PT_LOAD per segment."""
    def note(ntype, desc):
        name = b"CORE\0"
        return struct.pack("<III", len(name), len(desc), ntype) + name + b"\0" * (-len(name) % 4) + \
            desc + b"\0" * (-len(desc) % 4)
    prps = bytearray(136)
    struct.pack_into("<i", prps, 24, pid)
    prps[40:40 + len(comm)] = comm
    fdesc = struct.pack("<QQ", len(files), PAGE_SIZE) + b"".join(struct.pack("<QQQ", s, e, 0) for s, e, _ in files) \
        + b"".join(n.encode() + b"\0" for *_, n in files)
    notes = note(3, bytes(prps)) + note(0x46494C45, fdesc)
    phnum = 1 + len(segments)
    phoff = 64
    data_off = phoff + 56 * phnum
    notes_off = data_off
    seg_off = (notes_off + len(notes) + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
    ph = struct.pack("<IIQQQQQQ", 4, 0, notes_off, 0, 0, len(notes), 0, 1)
    blob = b""
    for va, content in segments:
        ph += struct.pack("<IIQQQQQQ", 1, 6, seg_off + len(blob), va, 0, len(content), len(content), PAGE_SIZE)
        blob += content
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), e_type, 62, 1, 0, phoff, 0, 0, 64,
                       56, phnum, 64, 0, 0)
    img = ehdr + ph + notes
    img += bytes(seg_off - len(img)) + blob
    if truncate_to is not None:
        img = img[:truncate_to]
    path.write_bytes(img)


def test_core_file_pages_and_manifest(tmp_path):
    heap = b"".join(bytes([i]) * PAGE_SIZE for i in range(1, 4))
    lib = b"L" * PAGE_SIZE * 2
    core = tmp_path / "core.1"
    make_core(core, [(0x555000, heap), (0x7F0000000000, lib)], files=[(0x7F0000000000, 0x7F0000002000, "/lib/x.so")])
    out = tmp_path / "core.pages"
    man = capture_core(str(core), str(out))
    ps = PageSet.open(out)
    assert len(ps) == 5 and ps[0] == b"\x01" * PAGE_SIZE and ps[4] == b"L" * PAGE_SIZE
    assert man.vaddr == [0x555000, 0x556000, 0x557000, 0x7F0000000000, 0x7F0000001000]
    assert man.region == ["[anon]"] * 3 + ["/lib/x.so"] * 2
    assert man.processes[0]["pid"] == 4242 and man.processes[0]["comm"] == "fakeproc"
    anon = capture_core(str(core), str(tmp_path / "anon.pages"), anon_only=True)
    assert len(anon) == 3


def test_truncated_core_is_reported_not_crashed(tmp_path):
    core = tmp_path / "core.t"
    make_core(core, [(0x555000, b"a" * PAGE_SIZE * 4)])
    size = core.stat().st_size
    core.write_bytes(core.read_bytes()[:size - PAGE_SIZE - 100])
    man = capture_core(str(core), str(tmp_path / "t.pages"))
    assert len(man) == 2 and any("truncated core" in n for n in man.notes)


@pytest.mark.parametrize("content,msg", [
    (b"", "empty file"),
    (b"not an elf at all" * 10, "not an ELF file"),
    (b"\x7fELF\x01\x01" + bytes(80), "64-bit little-endian"),
    (None, "not a core dump"),
    ("short", "truncated ELF core"),
])
def test_bad_core_files(tmp_path, capsys, content, msg):
    core = tmp_path / "bad.core"
    if content is None:
        make_core(core, [(0x1000, b"x" * PAGE_SIZE)], e_type=2)
    elif content == "short":
        make_core(core, [(0x1000, b"x" * PAGE_SIZE)])
        core.write_bytes(core.read_bytes()[:80])
    else:
        core.write_bytes(content)
    out = tmp_path / "o.pages"
    rc = main(["capture", "--core", str(core), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and str(core) in err and err.count("\n") == 1
    assert not out.exists() and not manifest_path(out).exists()


@needs_root
@pytest.mark.skipif(shutil.which("gcore") is None, reason="gcore (gdb) not installed")
def test_core_from_gcore(tmp_path):
    p = start_marker_process()
    try:
        r = subprocess.run(["gcore", "-o", str(tmp_path / "core"), str(p.pid)], capture_output=True, timeout=120)
        assert r.returncode == 0
    finally:
        p.kill()
        p.wait()
    out = tmp_path / "g.pages"
    assert main(["capture", "--core", str(tmp_path / f"core.{p.pid}"), "-o", str(out)]) == 0
    ps = PageSet.open(out)
    man = Manifest.load(manifest_path(out), len(ps))
    assert man.processes[0]["pid"] == p.pid
    assert marker_ids(ps) == set(range(40))


# ---- synthetic mixes and the profile -------------------------------------------------------
def test_synthetic_mixes_are_seeded_and_shaped():
    a, ma = generate("android-swap", 4000, seed=7)
    b, _ = generate("android-swap", 4000, seed=7)
    c, _ = generate("android-swap", 4000, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    d = analyze(PageSet.from_bytes(a.tobytes()))
    assert 0.045 < d["zero_pages"] / 4000 < 0.075                   # about 6% zero pages
    assert 0.015 < d["same_filled_pages"] / 4000 < 0.035            # about 2.5% other same-filled
    assert 0.10 < d["duplicate_share"] < 0.22                        # 10-20% duplicates
    assert len(ma.processes) == 8
    u = analyze(PageSet.from_bytes(generate("all-unique", 500, 1)[0].tobytes()))
    assert u["distinct_contents"] == 500 and u["duplicate_pages"] == 0
    v, mv = generate("identical-vms", 400, 1)
    assert len(mv.processes) == 4 and analyze(PageSet.from_bytes(v.tobytes()))["duplicate_pages"] == 3 * 70


def test_profile_hand_computed(tmp_path, capsys):
    A = (b"alpha " * 700)[:PAGE_SIZE]
    B = (b"bravo! " * 600)[:PAGE_SIZE]
    C = bytes(range(256)) * 16
    pages = [bytes(PAGE_SIZE)] * 3 + [b"\x01\x02" * 2048] * 2 + [A] * 4 + [B] * 2 + [C]
    f = tmp_path / "h.pages"
    f.write_bytes(b"".join(pages))
    assert main(["analyze", str(f), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["pages"], d["zero_pages"], d["same_filled_pages"], d["other_pages"]) == (12, 3, 2, 7)
    assert (d["distinct_contents"], d["duplicate_pages"]) == (3, 4)
    assert d["duplicate_groups"]["2"] == 1 and d["duplicate_groups"]["3-4"] == 1
    assert sum(d["compressed_length_histogram"].values()) == 7
    assert main(["analyze", str(f)]) == 0
    assert "duplicate pages" in capsys.readouterr().out


def test_manifest_that_disagrees_is_an_error(tmp_path, capsys):
    f = tmp_path / "m.pages"
    f.write_bytes(bytes(PAGE_SIZE * 3))
    manifest_path(f).write_text(json.dumps(Manifest(pid=[1, 1], vaddr=[0, 4096], region=["a", "a"]).to_json()))
    assert main(["analyze", str(f)]) == 2
    assert "lists 2 pages but its page file has 3" in capsys.readouterr().err
    manifest_path(f).write_text("{not json")
    assert main(["simulate", "ksm", str(f)]) == 2
    assert "malformed manifest JSON" in capsys.readouterr().err


def test_generate_cli(tmp_path, capsys):
    out = tmp_path / "g.pages"
    assert main(["generate", "identical-vms", "-n", "64", "--seed", "2", "-o", str(out)]) == 0
    assert PageSet.open(out).nbytes == 64 * PAGE_SIZE and manifest_path(out).exists()
    assert main(["simulate", "all", str(out), "--json", "--mechanisms", "ksm,zram_dedup"]) == 0
    capsys.readouterr()
