"""Plots recorded from a run's events (KSM's counters per full scan, the pool during swap-out)
and ``pagemerge sweep``; expectations from KSM's algorithm, the page set and the engine's own
end-of-run counters."""
import csv
import re
import subprocess
import sys

import numpy as np
import pytest

from engine.events import EventBus
from engine.errors import InputError
from engine.mechanisms import Workload, make
from engine.pages import PAGE_SIZE, PageSet
from reports.plots import SeriesRecorder, convergence_figure, plots_html, pool_growth_figure
from reports.sweep import parse_spec, run_sweep, sweep_html
from tests.pagesets import text_pages


def _run(name, pages, **kw):
    m = make(name, **kw)
    rec = SeriesRecorder(m)
    bus = EventBus()
    bus.subscribe(rec)
    m.run(Workload(pages, None, 1.0, "lru", 0, False, name="t"), bus=bus)
    return m, rec


def _three_copies_two_unique():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, PAGE_SIZE, dtype=np.uint8).tobytes()
    u = [rng.integers(0, 256, PAGE_SIZE, dtype=np.uint8).tobytes() for _ in range(2)]
    return PageSet.from_pages([a, u[0], a, u[1], a], "three-copies")


def test_ksm_counters_per_full_scan():
    """Three copies of one page: the first scan only records checksums (nothing merges), the
    second merges them into one KSM page mapped three times: pages_shared 1, pages_sharing 2."""
    m, rec = _run("ksm", _three_copies_two_unique())
    assert rec.scans[0]["full_scans"] == 1 and rec.scans[0]["pages_shared"] == 0
    assert rec.scans[1]["pages_shared"] == 1 and rec.scans[1]["pages_sharing"] == 2
    assert [s["full_scans"] for s in rec.scans] == list(range(1, len(rec.scans) + 1))
    last = m.result()["mm_stat"]["ksm"]
    assert (rec.scans[-1]["pages_shared"], rec.scans[-1]["pages_sharing"]) == (last["pages_shared"],
                                                                               last["pages_sharing"])
    assert "<svg" in convergence_figure(rec.scans) and convergence_figure(rec.scans, "png")[:4] == b"\x89PNG"


def test_pool_growth_ends_at_mem_used_total():
    pages = text_pages(40, distinct=8)
    m, rec = _run("upstream_zram", pages)
    assert len(rec.pool) == len(pages)                      # every page stored once, in order
    assert [p[0] for p in rec.pool] == list(range(1, len(pages) + 1))
    assert all(b >= a for (_, a), (_, b) in zip(rec.pool, rec.pool[1:]))   # only grows while storing
    assert rec.pool[-1][1] == m.result()["mm_stat"]["mem_used_total"]
    html = plots_html({"upstream_zram": rec})
    assert 'id="pool-growth"' in html and "Pool growth during swap-out" in html
    assert pool_growth_figure({"upstream_zram": rec.pool}, "png")[:4] == b"\x89PNG"


def test_sweep_spec_refusals():
    assert parse_spec("swap_fraction=0.5,1") == ("swap-fraction", [0.5, 1.0])
    assert parse_spec("max-page-sharing=2,256") == ("max-page-sharing", [2, 256])
    for bad, msg in (("foo=1", "unknown parameter 'foo'"), ("swap-fraction=nan", "not a value from 0.0 to 1.0"),
                     ("swap-fraction=2", "not a value"), ("predetermined-size=0", "not a value from 1 to 4096"),
                     ("max-page-sharing=1", "not a value from 2"), ("hash=md5", "unknown 'md5'"),
                     ("hash", "is not PARAM=v1,v2"), ("hash=", "no values")):
        with pytest.raises(InputError, match=msg):
            parse_spec(bad)


def test_sweep_varies_what_it_says():
    pages = text_pages(24, distinct=4)
    wl = Workload(pages, None, 1.0, "lru", 0, False, name="t")
    df = run_sweep(wl, "swap-fraction", [0.0, 1.0], ["upstream_zram", "zram_dedup"])
    assert list(df.columns[:3]) == ["param", "value", "mechanism"] and len(df) == 4
    at0 = df[df["value"] == 0.0].set_index("mechanism")
    assert (at0["saved_bytes"] == 0).all() and (at0["pages_merged"] == 0).all()   # nothing swapped, nothing shared
    at1 = df[df["value"] == 1.0].set_index("mechanism")
    assert at1.loc["zram_dedup", "pages_merged"] == 24 - 4                     # 4 distinct pages, 20 duplicates
    # one value of a sweep is the same run as the mechanism made alone with that parameter
    df = run_sweep(wl, "hash", ["xxhash32"], ["zram_dedup"])
    m = make("zram_dedup", hash="xxhash32")
    m.run(wl)
    assert int(df["net_saved_bytes"].iloc[0]) == m.result()["net_saved_bytes"]
    assert 'id="sweep-table"' in sweep_html(df)


def _cells(page: str, table_id: str) -> dict:
    body = re.search(f'<table class="results" id="{table_id}">.*?</table>', page, re.S).group(0)
    return {m: re.findall(r"<td>([^<]*)</td>", row)[1:]
            for m, row in re.findall(r'<tr data-mechanism="([^"]+)">(.*?)</tr>', body, re.S)}


def test_sweep_shows_the_pool_beside_the_savings():
    """The sweep's table and figure carry each pooled mechanism's zsmalloc pool next to its net
    savings; zswap 3.11 keeps its pool in zbud, not zsmalloc, so it has no pool row. Expected
    values: the mechanisms run alone."""
    from reports.numbers import human
    pages = text_pages(24, distinct=4)
    wl = Workload(pages, None, 1.0, "lru", 0, False, name="t")
    df = run_sweep(wl, "swap-fraction", [0.5, 1.0], ["upstream_zram", "zram_dedup", "zswap_3_11"])
    page = sweep_html(df)
    pool = _cells(page, "sweep-pool-table")
    assert set(pool) == {"upstream_zram", "zram_dedup"}
    for mech in pool:
        alone = []
        for frac in (0.5, 1.0):
            m = make(mech)
            m.run(Workload(pages, None, frac, "lru", 0, False, name="t"))
            alone.append(human(m.result()["mm_stat"]["mem_used_total"]))
        assert pool[mech] == alone
    assert set(_cells(page, "sweep-table")) == {"upstream_zram", "zram_dedup", "zswap_3_11"}
    assert "zsmalloc pool (mem_used_total), MiB" in page           # the pool panel's axis label
    no_pool = sweep_html(df[df["mechanism"] == "zswap_3_11"])
    assert 'id="sweep-pool-table"' not in no_pool and "zsmalloc pool" not in no_pool


def test_sweep_cli_writes_csv_svg_png(tmp_path):
    pages = text_pages(16, distinct=4)
    pf = tmp_path / "p.pages"
    pf.write_bytes(b"".join(pages.page(i) for i in range(len(pages))))
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "pagemerge", "sweep", "max-page-sharing=2,3,256", str(pf),
                        "--mechanisms", "ksm,upstream_zram", "-o", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""                                    # no progress bar when stderr is not a terminal
    rows = list(csv.DictReader(open(out / "sweep-max-page-sharing.csv")))
    assert [(x["value"], x["mechanism"]) for x in rows] == [(v, m) for v in ("2", "3", "256")
                                                            for m in ("ksm", "upstream_zram")]
    # 4 distinct pages, 4 copies each: with max_page_sharing 256 one KSM page takes all 4 copies
    # of each (pages_sharing 3 per page, 12 in all)
    ksm = {x["value"]: int(x["pages_merged"]) for x in rows if x["mechanism"] == "ksm"}
    assert ksm["256"] == 12
    assert (out / "sweep-max-page-sharing.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "sweep-max-page-sharing.svg").read_text().startswith("<svg")
    r = subprocess.run([sys.executable, "-m", "pagemerge", "sweep", "hash=md5", str(pf), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr == "pagemerge: sweep: hash: unknown 'md5'; use jhash or xxhash32\n"


def test_notebook_helpers_type_the_events_and_inline_the_chain():
    from engine.events import Recorder
    from reports.notebook import chain_html, event_tables, process_table, shared_count
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    m = make("ksm")
    m.run(Workload(_three_copies_two_unique(), None, 1.0, "lru", 0, False, name="t"), bus=bus)
    t = event_tables(rec.events, ["ksm.checksum", "ksm.merge"])
    assert list(t) == ["ksm.checksum", "ksm.merge"]
    ck = t["ksm.checksum"]
    assert str(ck["pid"].dtype) == "int64" and all(v.startswith("0x") for v in ck["vaddr"])
    assert "kpfn" not in ck.columns and not ck.isna().any().any()          # one kind per table, no NaN grid
    assert shared_count("ksm", rec.counts) == 2                             # two copies mapped onto the first
    h = chain_html("ksm", m.title, m.link, 2)
    assert 'style="fill:#fdecea;stroke:#c0392b' in h and "shared here (2 in this run)" in h

    class M:                                                                 # a thinned capture's manifest
        processes = [{"pid": 10, "comm": "a", "pages": 500}, {"pid": 11, "comm": "b", "pages": 40}]
        pid = [10, 10, 11]
    pt = process_table(M())
    assert pt["pages in this set"].tolist() == [2, 1] and pt["pages when captured"].tolist() == [500, 40]


def _pty_run(args, timeout=300):
    """Run with stderr on a pseudo-terminal (as a person at a terminal would); stdout, stderr."""
    import os
    import pty
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))   # a terminal has a size
    try:
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        out = p.communicate(timeout=timeout)[0]
    finally:
        os.close(master)
    return p.returncode, out.decode(), err.decode(errors="replace")


def test_progress_bar_only_on_a_terminal(tmp_path):
    pages = text_pages(16, distinct=4)
    pf = tmp_path / "p.pages"
    pf.write_bytes(b"".join(pages.page(i) for i in range(len(pages))))
    args = [sys.executable, "-m", "pagemerge", "simulate", "all", str(pf), "--no-manifest",
            "--mechanisms", "upstream_zram,zram_dedup"]
    rc, out, err = _pty_run(args)
    assert rc == 0 and "simulate all:" in err and "/2 [" in err          # the bar, on the terminal
    assert "simulate all" not in out and "zram_dedup" in out            # the table on stdout, untouched
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == ""                         # nothing when stderr is a pipe


def test_misspelled_mechanism_in_params_is_refused():
    from engine.mechanisms import compare, simulate_all
    wl = Workload(text_pages(4), None, 1.0, "lru", 0, False, name="t")
    for f in (compare, simulate_all):
        with pytest.raises(InputError, match=r"unknown mechanism\(s\) 'zram_dedupe'; use any of upstream_zram"):
            f(wl, ["zram_dedup"], {"zram_dedupe": {"hash": "xxhash32"}})


def test_report_sweep_section(tmp_path):
    pages = text_pages(16, distinct=4)
    pf = tmp_path / "p.pages"
    pf.write_bytes(b"".join(pages.page(i) for i in range(len(pages))))
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "pagemerge", "report", str(pf), "--no-manifest", "--mechanisms",
                        "upstream_zram,zram_dedup,ksm", "--sweep", "hash=jhash,xxhash32", "-o", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    page = (out / "report-US9977598.html").read_text()
    sec = page[page.index('<section id="sweep">'):]
    sec = sec[:sec.index("</section>")]
    assert "<svg" in sec and list(_cells(sec, "sweep-table")) == ["upstream_zram", "zram_dedup", "ksm"]
    assert list(_cells(sec, "sweep-pool-table")) == ["upstream_zram", "zram_dedup", "ksm"]   # KSM swaps to zram
    assert re.findall(r"<th>(jhash|xxhash32)</th>", sec) == ["jhash", "xxhash32"] * 2   # one head per table
    assert 'href="#sweep"' in page                                         # in the table of contents
    assert 'id="ksm-convergence"' in page and 'id="pool-growth"' in page
    r = subprocess.run([sys.executable, "-m", "pagemerge", "report", str(pf), "--sweep", "colour=1", "-o",
                        str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("pagemerge: --sweep: unknown parameter 'colour'; use one of swap-fraction") and not (tmp_path / "x").exists()
