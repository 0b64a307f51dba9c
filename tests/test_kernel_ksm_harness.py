"""The live-ksmd harness on a loaded machine: a snapshot that comes a full scan late (ksmd ran
on while the harness was off the CPU) makes the run invalid, and it is repeated, never
compared. No kernel here: a stand-in for engine.kernel.ksm.KernelKsm whose ksmd skips scans
when told to, and the unit test of the real class's count of skipped scans."""
from __future__ import annotations

import pytest

import engine.kernel.ksm as live
from engine.errors import PagemergeError
from engine.pages import PAGE_SIZE, PageSet
from engine.scenario import KERNEL_ATTEMPTS, KsmScenario

KEYS = ("pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "stable_node_chains",
        "stable_node_dups", "ksm_zero_pages", "general_profit", "pages_scanned", "full_scans")


class StandIn:
    """A ksmd whose counters settle after its second full scan (10 identical pages: one KSM
    page shared by ten). ``skips[k]``: full scans it runs past the snapshot of attempt k."""
    runs: list = []
    skips: list = []

    def __init__(self, data, **_settings):
        self.n = 0
        self.skipped_scans = 0
        self.late = StandIn.skips[len(StandIn.runs)] if len(StandIn.runs) < len(StandIn.skips) else 0
        StandIn.runs.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def scan_once(self) -> int:
        extra = 1 if self.late and self.n == 1 else 0     # late once, after the first scan
        self.n += 1 + extra
        self.skipped_scans += extra
        return self.n

    def counters(self) -> dict:
        c = dict.fromkeys(KEYS, 0)
        if self.n >= 2:
            c.update(pages_shared=1, pages_sharing=9)
        c["full_scans"] = self.n
        return c

    def ksm_stat(self) -> list[dict]:
        merged = 10 if self.n >= 2 else 0
        return [{"ksm_rmap_items": 10, "ksm_zero_pages": 0, "ksm_merging_pages": merged, "ksm_process_profit": 0}]

    def write(self, *a):
        raise AssertionError("no writes in this scenario")


@pytest.fixture
def stand_in(monkeypatch):
    StandIn.runs, StandIn.skips = [], []
    monkeypatch.setattr(live, "KernelKsm", StandIn)
    return StandIn


def scenario() -> KsmScenario:
    return KsmScenario(PageSet.from_pages([b"*" * PAGE_SIZE] * 10))


def test_a_clean_run_is_taken_at_once(stand_in):
    r = scenario().run_kernel()
    assert len(stand_in.runs) == 1
    assert r["full_scans_at"] == [4]            # settled at scan 2, the same over scans 3 and 4
    assert r["ksm"]["pages_sharing"] == 9


def test_a_late_snapshot_repeats_the_run(stand_in):
    stand_in.skips = [1]                        # the first run's second snapshot comes a scan late
    r = scenario().run_kernel()
    assert len(stand_in.runs) == 2 and stand_in.runs[0].skipped_scans == 1
    assert r["full_scans_at"] == [4]            # from the clean second run, not the first's 5
    # the model's own rule stops where the clean run did
    assert scenario().run_model()["full_scans_at"] == r["full_scans_at"]


def test_every_run_late_is_an_error_not_a_comparison(stand_in):
    stand_in.skips = [1] * KERNEL_ATTEMPTS
    with pytest.raises(PagemergeError, match=f"in {KERNEL_ATTEMPTS} runs.*too busy"):
        scenario().run_kernel()
    assert len(stand_in.runs) == KERNEL_ATTEMPTS


def test_the_real_harness_counts_scans_past_the_snapshot(monkeypatch):
    """engine.kernel.ksm.KernelKsm.scan_once against a scripted sysfs: ksmd's full_scans moves
    from 7 to 9 while the harness waits, so one scan is counted as skipped."""
    reads = iter(["7", "7", "9", "9"])
    writes = []
    kk = live.KernelKsm.__new__(live.KernelKsm)
    kk.scan_timeout = 5.0
    kk.skipped_scans = 0
    monkeypatch.setattr(live, "_read", lambda knob: next(reads))
    monkeypatch.setattr(live.KernelKsm, "_write", staticmethod(lambda knob, value: writes.append((knob, value))))
    assert kk.scan_once() == 9
    assert kk.skipped_scans == 1 and writes == [("run", "1"), ("run", "0")]
