"""The safety rules for touching the live kernel, exercised for real: cleanup on SIGTERM,
the lock that keeps runs from overlapping, refusal of a device or KSM in use."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.errors import KernelUnavailable

ROOT = str(Path(__file__).resolve().parent.parent)
pytestmark = pytest.mark.kernel
KSM = "/sys/kernel/mm/ksm"
KNOBS = ("run", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "merge_across_nodes", "use_zero_pages",
         "smart_scan", "stable_node_chains_prune_millisecs", "advisor_mode", "advisor_max_cpu",
         "advisor_min_pages_to_scan", "advisor_max_pages_to_scan", "advisor_target_scan_time")


def read(path):
    with open(path) as f:
        return f.read().strip()


def start(code):
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": ROOT})
    return p


def test_sigterm_inside_a_zram_session_resets_zram0(live_zram):
    p = start("""
        import time
        from engine.kernel.zram0 import KernelZram
        with KernelZram(4096 * 64, "lz4") as k:
            k.write_page(0, b"x" * 4000 + bytes(96))
            print("inside", flush=True)
            time.sleep(60)
    """)
    assert p.stdout.readline().strip() == "inside", p.stderr.read()
    assert read("/sys/block/zram0/initstate") == "1"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    assert p.returncode != 0
    assert read("/sys/block/zram0/initstate") == "0"


def test_sigterm_inside_a_ksm_session_restores_every_knob(live_ksm):
    before = {k: read(f"{KSM}/{k}") for k in KNOBS}
    p = start("""
        import time
        from engine.kernel.ksm import KernelKsm
        with KernelKsm([[b"*" * 4096] * 20], max_page_sharing=4, use_zero_pages=True, smart_scan=0) as k:
            k.run_until_converged()
            print("inside", " ".join(str(c.pid) for c in k.children), flush=True)
            time.sleep(60)
    """)
    line = p.stdout.readline().split()
    assert line and line[0] == "inside", p.stderr.read()
    assert read(f"{KSM}/pages_shared") != "0"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    after = {k: read(f"{KSM}/{k}") for k in KNOBS}
    assert after == before
    assert read(f"{KSM}/pages_shared") == "0" and read(f"{KSM}/pages_sharing") == "0"
    for pid in line[1:]:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in read(f"/proc/{pid}/stat").split()[2]


def test_two_runs_never_overlap(live_zram):
    from engine.kernel.safety import kernel_lock
    with kernel_lock():
        p = start("""
            from engine.kernel.zram0 import KernelZram
            with KernelZram(4096 * 16, "lz4") as k:
                print("got it", flush=True)
        """)
        time.sleep(1.5)
        assert p.poll() is None                                 # waiting for the lock
        assert read("/sys/block/zram0/initstate") == "0"        # and has touched nothing
    assert p.stdout.readline().strip() == "got it"
    p.wait(timeout=30)
    assert p.returncode == 0 and read("/sys/block/zram0/initstate") == "0"


def test_refuses_a_zram0_initialised_by_someone_else(live_zram):
    from engine.kernel.zram0 import KernelZram
    with open("/sys/block/zram0/disksize", "w") as f:
        f.write(str(1 << 20))
    try:
        with pytest.raises(KernelUnavailable, match="initialised by someone else"):
            with KernelZram(4096 * 16, "lz4"):
                pass
        assert read("/sys/block/zram0/initstate") == "1"        # left alone
    finally:
        with open("/sys/block/zram0/reset", "w") as f:
            f.write("1")


def test_refuses_ksm_already_running(live_ksm):
    from engine.kernel.ksm import KernelKsm
    with open(f"{KSM}/run", "w") as f:
        f.write("1")
    try:
        with pytest.raises(KernelUnavailable, match="run is 1"):
            with KernelKsm([[b"a" * 4096]]):
                pass
    finally:
        with open(f"{KSM}/run", "w") as f:
            f.write("0")
