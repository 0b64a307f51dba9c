"""Fleet studies on Dask (``pagemerge study``) and ``analyze`` on a cluster.

The study runs on a real 2-worker local cluster over a folder of small generated page sets.
Every row of its table is checked against ``simulate_all`` run here, in this process, on the
same page set; the per-process profile against counts made here from the page bytes with
hashlib; the outlier rule against hand-computed quartiles.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections import Counter, defaultdict

import pandas as pd
import pytest

from engine.mechanisms import Workload, simulate_all, variant_params
from engine.pages import PAGE_SIZE, PageSet
from engine.workloads.manifest import Manifest, resolve_manifest
from engine.workloads.synthetic import write_mix
from pagemerge.cli import main
from tests.browser import launch, needs_chromium

MECHS = ("upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm", "patent_claim1")
FLEET = (("android-swap", 128, 1), ("identical-vms", 96, 2), ("all-unique", 64, 3))


@pytest.fixture(scope="module")
def cluster():
    """One local Dask cluster for the tests that use ``--scheduler`` (an existing cluster)."""
    import logging
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                      silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Three page sets in a folder, studied once with ``--workers 2``; the outputs of that first
    run are copied aside (a later test adds a page set and runs again into the same folder)."""
    root = tmp_path_factory.mktemp("fleet")
    sets = root / "sets"
    sets.mkdir()
    for mix, n, seed in FLEET:
        write_mix(mix, n, str(sets / f"{mix}.pages"), seed=seed)
    out = root / "out"
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["study", str(sets), "--workers", "2", "-o", str(out), "--mechanisms", ",".join(MECHS)])
    first = root / "first"
    shutil.copytree(out, first)
    return {"root": root, "sets": sets, "out": out, "first": first, "rc": rc, "stdout": buf.getvalue()}


def _in_process(path: str) -> dict:
    pages = PageSet.open(path)
    wl = Workload(pages, resolve_manifest(path, len(pages)), name=path)
    return simulate_all(wl, MECHS, variant_params())


def _flat(prefix: str, d: dict, out: dict) -> dict:
    for k, v in d.items():
        if isinstance(v, dict):
            _flat(f"{prefix}.{k}", v, out)
        else:
            out[f"{prefix}.{k}"] = v
    return out


def test_study_runs_and_reports(fleet):
    assert fleet["rc"] == 0, fleet["stdout"]
    assert "3 page set(s) x 6 mechanism(s): 3 computed, 0 reused" in fleet["stdout"]
    assert "local Dask cluster of 2 worker process(es)" in fleet["stdout"]
    for name in ("study.parquet", "study.csv", "processes.csv", "fleet.html"):
        assert (fleet["first"] / name).is_file()
    assert len(list((fleet["first"] / "parts").glob("*.json"))) == 3


def test_each_row_equals_simulate_all_in_process(fleet):
    t = pd.read_parquet(fleet["first"] / "study.parquet")
    assert len(t) == len(FLEET) * len(MECHS)
    mm_cols = [c for c in t.columns if c.startswith("mm_stat.")]
    for mix, n, _seed in FLEET:
        path = str(fleet["sets"] / f"{mix}.pages")
        rows = t[t["page_set"] == path]
        assert list(rows["mechanism"]) == list(MECHS)
        ref = _in_process(path)
        man = Manifest.load(path + ".json", n)
        for _, row in rows.iterrows():
            r = ref["mechanisms"][row["mechanism"]]
            assert row["name"] == mix
            assert row["pages"] == n and row["processes"] == len(set(man.pid))
            for k in ("saved_bytes", "metadata_bytes", "net_saved_bytes", "pages_merged", "variant"):
                assert row[k] == r[k], (mix, row["mechanism"], k)
            assert bool(row["verified_readback"]) is r["verified_readback"] is True
            assert row["net_saved_share"] == r["net_saved_bytes"] / (n * PAGE_SIZE)
            for k, v in r["work"].items():
                assert row[f"work.{k}"] == v, (mix, row["mechanism"], k)
            want = _flat("mm_stat", r.get("mm_stat") or {}, {})
            for c in mm_cols:
                if c in want:
                    assert row[c] == want[c], (mix, row["mechanism"], c)
                else:
                    assert pd.isna(row[c]), (mix, row["mechanism"], c)
            assert set(want) <= set(mm_cols)


def _cells(df: pd.DataFrame) -> list[list]:
    out = []
    for rec in df.astype(object).itertuples(index=False):
        out.append([None if (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))) else v
                    for v in rec])
    return out


def test_parquet_and_csv_agree(fleet):
    pq = pd.read_parquet(fleet["first"] / "study.parquet")
    csv = pd.read_csv(fleet["first"] / "study.csv")
    assert list(pq.columns) == list(csv.columns)
    a, b = _cells(pq), _cells(csv)
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for col, x, y in zip(pq.columns, ra, rb):
            assert (x is None and y is None) or x == y, (col, x, y)


def test_per_process_breakdown_counted_from_the_bytes(fleet):
    procs = pd.read_csv(fleet["first"] / "processes.csv")
    for mix, n, _seed in FLEET:
        path = str(fleet["sets"] / f"{mix}.pages")
        data = (fleet["sets"] / f"{mix}.pages").read_bytes()
        man = json.loads((fleet["sets"] / f"{mix}.pages.json").read_text())
        pids = man["pages"]["pid"]
        pages = [data[i * PAGE_SIZE:(i + 1) * PAGE_SIZE] for i in range(n)]
        kind, digest = [], []
        for pg in pages:
            words = {pg[j:j + 8] for j in range(0, PAGE_SIZE, 8)}
            kind.append("zero" if pg == bytes(PAGE_SIZE) else "same" if len(words) == 1 else "other")
            digest.append(hashlib.sha256(pg).hexdigest())
        count = Counter(d for d, k in zip(digest, kind) if k == "other")
        owners = defaultdict(set)
        for d, k, p in zip(digest, kind, pids):
            if k == "other":
                owners[d].add(p)
        total_dup = sum(1 for d, k in zip(digest, kind) if k == "other" and count[d] > 1)
        rows = procs[procs["page_set"] == path].set_index("pid")
        assert sorted(rows.index) == sorted(set(pids))
        for p in set(pids):
            mine = [i for i in range(n) if pids[i] == p]
            dup = sum(1 for i in mine if kind[i] == "other" and count[digest[i]] > 1)
            r = rows.loc[p]
            assert r["pages"] == len(mine)
            assert r["zero_pages"] == sum(kind[i] == "zero" for i in mine)
            assert r["same_filled_pages"] == sum(kind[i] == "same" for i in mine)
            assert r["pages_with_duplicate"] == dup
            assert r["cross_process_duplicates"] == sum(1 for i in mine if kind[i] == "other"
                                                        and len(owners[digest[i]]) > 1)
            assert r["share_of_duplicates"] == pytest.approx(dup / total_dup if total_dup else 0.0, abs=1e-6)
        if mix == "identical-vms":          # 70% of each VM's pages are the shared image
            assert total_dup >= 0.6 * n
        if mix == "all-unique":
            assert total_dup == 0


def test_fleet_report_has_its_sections(fleet):
    html = (fleet["first"] / "fleet.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    for sid, title in (("summary", "What was studied"), ("net-savings", "Net savings across the fleet"),
                       ("processes", "Per-process breakdown"), ("outliers", "Outliers"), ("page-sets", "Page sets")):
        assert f'<section id="{sid}">' in html and title in html
    assert "<svg" in html and "<script" not in html.lower()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "not legal advice" in html
    for mix, _n, _s in FLEET:
        assert mix in html
    for m in MECHS:
        assert m in html


def test_outlier_rule_by_hand():
    from reports.fleet import iqr_fences, outliers
    f = iqr_fences([1, 2, 3, 4, 100])           # positions 1 and 3 of the sorted five: Q1 = 2, Q3 = 4
    assert (f["q1"], f["q3"], f["iqr"], f["low"], f["high"]) == (2.0, 4.0, 2.0, -1.0, 7.0)
    f = iqr_fences([0, 10, 20, 30])             # Q1 at 0.75 -> 7.5, Q3 at 2.25 -> 22.5
    assert (f["q1"], f["q3"]) == (7.5, 22.5)
    t = pd.DataFrame({"mechanism": ["a"] * 5 + ["b"] * 5, "name": list("pqrst") * 2,
                      "net_saved_share": [1, 2, 3, 4, 100, -50, 10, 11, 12, 13]})
    fences, out = outliers(t)
    assert [(r.mechanism, r.name, r.side) for r in out.itertuples()] == [("a", "t", "above"), ("b", "p", "below")]
    assert fences.loc["b", "q1"] == 10.0 and fences.loc["b", "high"] == 12 + 1.5 * 2


def test_report_lists_a_known_outlier(fleet, tmp_path):
    """Five copies of one page set's result, one with its net savings raised far above the rest:
    the report's outlier table names that one and no other."""
    from reports.study import Study, process_table, study_table
    from reports.fleet import build_fleet_report
    base = json.loads(next((fleet["first"] / "parts").glob("*.json")).read_text())
    parts = []
    for i in range(5):
        p = json.loads(json.dumps(base))
        p["page_set"], p["name"] = f"/fleet/device-{i}.pages", f"device-{i}"
        if i == 3:
            p["result"]["mechanisms"]["zram_dedup"]["net_saved_bytes"] = p["summary"]["pages"] * PAGE_SIZE // 2
        parts.append(p)
    st = Study(tmp_path, [p["page_set"] for p in parts], computed=[], reused=[])
    st.where, st.table, st.processes = "test", study_table(parts), process_table(parts)
    html = build_fleet_report(st, tmp_path / "fleet.html").read_text()
    section = html[html.index('<section id="outliers">'):html.index('<section id="page-sets">')]
    listed = section[section.index("Page sets beyond the fences"):]
    assert "device-3" in listed and "above" in listed
    assert not any(f"device-{i}<" in listed for i in (0, 1, 2, 4))


def test_second_run_computes_only_the_new_page_set(fleet, cluster):
    """Resumable: one more page set in the folder, and only it is computed (here on an existing
    cluster given by its scheduler address); the earlier parts are not rewritten."""
    from reports.study import run_study
    parts = fleet["out"] / "parts"
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.json")}
    new = fleet["sets"] / "all-unique-2.pages"
    write_mix("all-unique", 64, str(new), seed=4)
    st = run_study([str(fleet["sets"])], fleet["out"], mechanisms=MECHS, params=variant_params(),
                   scheduler=cluster.scheduler_address,
                   insecure_scheduler=True)
    assert st.computed == [str(new)]
    assert len(st.reused) == 3
    assert "Dask cluster at" in st.where
    after = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.json")}
    assert len(after) == 4 and all(after[k] == v for k, v in before.items())
    t = pd.read_parquet(fleet["out"] / "study.parquet")
    assert len(t) == 4 * len(MECHS)
    first = pd.read_parquet(fleet["first"] / "study.parquet")
    old = t[t["page_set"] != str(new)].drop(columns="elapsed_s").reset_index(drop=True)
    assert _cells(old) == _cells(first.drop(columns="elapsed_s"))
    # other options are another study: nothing is reused
    st2 = run_study([str(new)], fleet["root"] / "other", mechanisms=("upstream_zram",), scheduler=cluster.scheduler_address,
                    workload={"swap_fraction": 0.5}, insecure_scheduler=True)
    assert st2.computed == [str(new)] and st2.reused == []


def _one_line_error(capsys, argv) -> str:
    try:
        rc = main(argv)
    except SystemExit as e:                  # usage errors leave through argparse
        rc = e.code
    cap = capsys.readouterr()
    assert rc == 2, (rc, cap.err)
    lines = cap.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pagemerge: "), cap.err
    assert "Traceback" not in cap.err and cap.out == ""
    return lines[0]


@pytest.fixture
def bad(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "truncated.pages").write_bytes(b"\1" * (PAGE_SIZE + 5))
    (d / "binary.bin").write_bytes(b"\x7fELF\0\0" + os.urandom(64))
    (d / "list.txt").write_text("# a fleet\ngood.pages\nmissing.pages\n")
    (d / "empty").mkdir()
    write_mix("all-unique", 4, str(d / "good.pages"), seed=0)
    (d / "short.pages").write_bytes(bytes(PAGE_SIZE * 3))
    (d / "short.pages.json").write_text((d / "good.pages.json").read_text())     # lists 4 pages, file has 3
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "study.csv").write_text("someone else's table\n")
    return d


@pytest.mark.parametrize("argv,msg", [
    (["{d}/nope.pages"], "nope.pages: no such page-set file"),
    (["{d}/binary.bin"], "binary.bin: neither a page-set file"),
    (["{d}/truncated.pages"], "not a multiple of 4096"),
    (["{d}/list.txt"], "list.txt:3: missing.pages: no such page-set file"),
    (["{d}/empty"], "no page-set files"),
    (["{d}/*.nothing"], "no file matches"),
    (["{d}/short.pages"], "manifest lists 4 pages but its page file has 3"),
    (["{d}/good.pages", "--mechanisms", "zram_dedup,frob"], "unknown 'frob'"),
    (["{d}/good.pages", "--workers", "0"], "--workers"),
    (["{d}/good.pages", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with"),
    (["{d}/good.pages", "--scheduler", "no address here"], "is not a scheduler address"),
    (["{d}/good.pages", "--swap-fraction", "2"], "--swap-fraction"),
])
def test_bad_input_is_one_line_and_writes_nothing(bad, capsys, argv, msg):
    out = bad.parent / "new-out"
    line = _one_line_error(capsys, ["study", *[a.replace("{d}", str(bad)) for a in argv], "-o", str(out)])
    assert msg in line, line
    assert not out.exists()


def test_existing_other_output_is_kept_without_force(bad, capsys):
    out = bad.parent / "out"
    line = _one_line_error(capsys, ["study", str(bad / "good.pages"), "-o", str(out), "--mechanisms", "upstream_zram"])
    assert "study.csv: exists; refusing to overwrite it (use --force)" in line
    assert (out / "study.csv").read_text() == "someone else's table\n"
    assert sorted(p.name for p in out.iterdir()) == ["study.csv"]


def test_parts_must_be_a_folder(bad, capsys):
    out = bad.parent / "o3"
    out.mkdir()
    (out / "parts").write_text("not a folder\n")
    line = _one_line_error(capsys, ["study", str(bad / "good.pages"), "-o", str(out)])
    assert "parts: exists and is not a directory" in line
    assert sorted(p.name for p in out.iterdir()) == ["parts"]


def test_unreachable_scheduler_is_one_line(bad, capsys, monkeypatch):
    import engine.workloads.distributed as dist
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 2)
    line = _one_line_error(capsys, ["study", str(bad / "good.pages"), "--scheduler", "tcp://127.0.0.1:9",
                                    "--insecure-scheduler", "-o", str(bad.parent / "o2")])
    assert "--scheduler: cannot connect to tcp://127.0.0.1:9" in line


def test_analyze_on_workers_equals_in_process(tmp_path, capsys, cluster):
    p = tmp_path / "mix.pages"
    write_mix("android-swap", 640, str(p), seed=7)
    assert main(["analyze", str(p), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["analyze", str(p), "--json", "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == local
    # many small chunk ranges merged on an existing cluster: still the same profile
    from engine.workloads.distributed import analyze_distributed, chunk_ranges
    assert chunk_ranges(640, 64, 8) == [(i * 64 * 2, (i + 1) * 64 * 2) for i in range(5)]
    assert analyze_distributed(str(p), scheduler=cluster.scheduler_address, chunk_pages=64,
                               insecure_scheduler=True) == local
    assert local["duplicate_pages"] > 0 and local["pages"] == 640


def test_process_breakdown_by_hand():
    """Six pages of two processes: two zero pages, one page of a repeated word, A twice (once in
    each process), B twice in one process, C once."""
    from reports.study import process_breakdown
    A, B, C = (bytes([x]) * 8 + bytes(range(256)) * 15 + bytes(PAGE_SIZE - 8 - 3840) for x in (1, 2, 3))
    word = (0x0101010101010102).to_bytes(8, "little") * (PAGE_SIZE // 8)
    pages = PageSet.from_pages([bytes(PAGE_SIZE), A, B, word, A, B, bytes(PAGE_SIZE), C])
    man = Manifest(processes=[{"pid": 10, "comm": "one"}, {"pid": 20, "comm": "two"}],
                   pid=[10, 10, 10, 10, 20, 10, 20, 20], vaddr=[0x1000 * i for i in range(8)], region=["[anon]"] * 8)
    summary, rows = process_breakdown(pages, man)
    assert summary == {"pages": 8, "processes": 2, "zero_pages": 2, "same_filled_pages": 1,
                       "pages_with_duplicate": 4, "duplicate_pages": 2}
    one, two = rows
    assert (one["pid"], one["comm"], one["pages"], one["zero_pages"], one["same_filled_pages"]) == (10, "one", 5, 1, 1)
    assert (one["pages_with_duplicate"], one["cross_process_duplicates"], one["share_of_duplicates"]) == (3, 1, 0.75)
    assert (two["pid"], two["pages"], two["zero_pages"], two["pages_with_duplicate"]) == (20, 3, 1, 1)
    assert (two["cross_process_duplicates"], two["share_of_duplicates"], two["page_share"]) == (1, 0.25, 0.375)
    # without a manifest: one process, no pid
    summary, rows = process_breakdown(pages, None)
    assert summary["processes"] == 1 and len(rows) == 1
    assert rows[0]["pid"] is None and rows[0]["pages_with_duplicate"] == 4 and rows[0]["cross_process_duplicates"] == 0




@needs_chromium
def test_fleet_report_in_headless_chromium(fleet):
    from playwright.sync_api import sync_playwright
    path = fleet["first"] / "fleet.html"
    console, requests = [], []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            assert page.title().startswith("pagemerge fleet study: 3 page sets")
            assert page.locator("#mechanism-summary tr:has(td)").count() == len(MECHS)
            assert page.locator("#page-set-rows tr:has(td)").count() == len(FLEET)
            n_procs = len(pd.read_csv(fleet["first"] / "processes.csv"))
            assert page.locator("#process-rows tr:has(td)").count() == n_procs
            assert page.locator("#fences tr:has(td)").count() == len(MECHS)
            assert page.locator("#disclaimer").is_visible()
            assert page.locator("#net-savings-figure svg").count() == 1
        finally:
            browser.close()
    assert [c for c in console if c[0] in ("error", "pageerror")] == []
    assert [u for u in requests if not u.startswith("file://")] == []


def test_a_worker_refuses_a_file_that_changed(tmp_path):
    from engine.errors import InputError
    from engine.workloads.distributed import check_stamp, file_stamp
    p = tmp_path / "a.pages"
    p.write_bytes(bytes(PAGE_SIZE))
    stamp = file_stamp(p)
    check_stamp(str(p), stamp)                         # the same file: accepted
    p.write_bytes(bytes(2 * PAGE_SIZE))
    with pytest.raises(InputError, match=r"a\.pages: on worker .* 8192 bytes .* but 4096 bytes .* same path"):
        check_stamp(str(p), stamp)
    p.unlink()
    with pytest.raises(InputError, match="no such file on worker"):
        check_stamp(str(p), stamp)


def test_the_local_cluster_speaks_tls_and_a_plain_scheduler_is_refused_to_root(cluster, bad, capsys):
    """Whoever reaches a Dask scheduler can run code on its workers: the local cluster uses
    TLS with credentials only its client holds, and as root a plain tcp:// scheduler needs
    --insecure-scheduler."""
    import os
    from engine.workloads.distributed import dask_client
    with dask_client(1) as client:
        assert client.scheduler.address.startswith("tls://")
        assert client.run(os.getpid)                      # and it works
    if os.geteuid() == 0:
        line = _one_line_error(capsys, ["study", str(bad / "good.pages"), "--scheduler", cluster.scheduler_address,
                                        "-o", str(bad / "o")])
        assert "--insecure-scheduler" in line and "root" in line
