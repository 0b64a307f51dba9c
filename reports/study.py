"""Fleet studies: every mechanism on every page set of a fleet, on a Dask cluster.

A study takes many page sets (a phone's swap, a VM's core, one dump per device) and runs
each through the mechanisms with :func:`engine.mechanisms.simulate_all`, one task per page
set. The task receives only the page set's path and the options: the worker opens the file
itself (memory-mapped), so page contents never travel, and it checks that the file it sees
is the one the client saw (size and modification time). Besides the mechanisms' measures,
the task profiles the page set by process (from its manifest): pages per process, zero and
other same-filled pages, pages whose content occurs more than once in the page set, and how
many of those duplicates are shared with another process.

Results are kept per page set as they finish, in ``DIR/parts/<key>.json``, where the key is
a SHA-256 of the page set's path, size and modification time (and its manifest's), the
mechanisms and every option. A later run with the same options reads those parts and
computes only what is missing, so a study interrupted after hours resumes where it stopped,
and adding page sets to a fleet costs only the new ones.

Outputs in ``DIR``: ``study.parquet`` and ``study.csv`` (the tidy table: one row per page set
and mechanism), ``processes.csv`` (one row per page set and process) and ``fleet.html`` (the
fleet report, :mod:`reports.fleet`). Each is written atomically and replaces only an earlier
output of a study; any other existing file needs ``force``.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError, PagemergeError
from engine.pages import PAGE_SIZE, PageSet

PART_FORMAT = "pagemerge-study-part"
PART_VERSION = 1
PARQUET_MARK = b"pagemerge-study"
#: the first columns of the tables; an existing CSV that starts with them is an earlier study's
TABLE_LEAD = ("page_set", "name", "pages", "processes")
PROCESS_LEAD = ("page_set", "name", "pid", "comm")
MAX_LIST_BYTES = 16 << 20
_GLOB_CHARS = set("*?[")


# ---- inputs ---------------------------------------------------------------------------------
def resolve_inputs(inputs) -> list[str]:
    """The page-set files named by ``inputs``, in order, each once (absolute paths).

    An input is a directory (its ``*.pages`` files), a glob (its matches; manifests beside
    page sets are left out), a page-set file (named ``*.pages``) or a list file (one page-set
    path per line; blank lines and lines starting with ``#`` are skipped; relative paths are
    relative to the list file's folder)."""
    out: list[str] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        a = os.path.abspath(p)
        key = os.path.realpath(a)
        if key not in seen:
            seen.add(key)
            out.append(a)

    for item in inputs:
        s = str(item)
        if os.path.isdir(s):
            found = sorted(glob.glob(os.path.join(glob.escape(s), "*.pages")))
            found = [f for f in found if os.path.isfile(f)]
            if not found:
                raise InputError(f"{s}: a directory with no page-set files (*.pages) in it")
            for f in found:
                add(f)
        elif _GLOB_CHARS & set(s) and not os.path.lexists(s):
            found = sorted(glob.glob(s, recursive=True))
            found = [f for f in found if not (f.endswith(".json") and f[:-5] in found)]
            if not found:
                raise InputError(f"{s}: no file matches this pattern")
            for f in found:
                add(f)
        elif s.endswith(".pages") or not os.path.lexists(s):
            add(s)
        else:
            for f in read_list_file(s):
                add(f)
    if not out:
        raise InputError("study: no page sets given")
    return out


def read_list_file(path: str) -> list[str]:
    from engine.fileio import read_input, decode_text
    data = read_input(path, "list of page sets", MAX_LIST_BYTES)
    if b"\0" in data:
        raise InputError(f"{path}: neither a page-set file (named *.pages) nor a list of page-set paths (it is binary)")
    text = decode_text(data, path, "list of page sets")
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        if "\0" in t or any(ord(c) < 32 for c in t):
            raise InputError(f"{path}:{n}: not a path (control characters)")
        p = t if os.path.isabs(t) else os.path.join(base, t)
        if not os.path.lexists(p):
            raise InputError(f"{path}:{n}: {t}: no such page-set file")
        out.append(p)
    if not out:
        raise InputError(f"{path}: the list names no page sets")
    return out


@dataclass
class PageSetRef:
    """A page set as the client saw it: what the part key and the worker's check are made of."""

    path: str
    size: int
    mtime_ns: int
    manifest: tuple[int, int] | None       # (size, mtime_ns) of PAGES.json, if present
    pages: int

    @property
    def stamp(self) -> tuple[int, int]:
        return self.size, self.mtime_ns // 1_000_000_000


def check_page_set(path: str) -> PageSetRef:
    """Open ``path`` as a page set and load its manifest, here, before any work is sent out:
    a bad input is one line before anything runs."""
    from engine.workloads.manifest import manifest_path, resolve_manifest
    pages = PageSet.open(path)
    try:
        n = len(pages)
        resolve_manifest(path, n)
    finally:
        with contextlib.suppress(BufferError):
            pages.close()
    st = os.stat(path)
    mp = manifest_path(path)
    mst = os.stat(mp) if os.path.lexists(mp) else None
    return PageSetRef(path, st.st_size, st.st_mtime_ns, (mst.st_size, mst.st_mtime_ns) if mst else None, n)


def part_key(ref: PageSetRef, options: dict) -> str:
    from engine._util import package_version
    __version__ = package_version()
    d = {"format": PART_FORMAT, "version": PART_VERSION, "pagemerge": __version__, "path": ref.path,
         "size": ref.size, "mtime_ns": ref.mtime_ns, "manifest": ref.manifest, "options": options}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=repr).encode()).hexdigest()


# ---- one task: one page set ---------------------------------------------------------------------
def process_breakdown(pages: PageSet, manifest) -> tuple[dict, list[dict]]:
    """Per process: its pages, zero pages, other same-filled pages (one 8-byte word repeated),
    pages whose content occurs at least twice in the page set (zero and same-filled pages
    aside, as zram stores those without an object), how many of those share their content
    with another process, and the process's share of all such pages in the page set."""
    import xxhash
    n = len(pages)
    pids = np.asarray(manifest.pid, dtype=np.int64) if manifest is not None else np.full(n, -1, np.int64)
    kind = np.zeros(n, np.uint8)                       # 0 other, 1 zero, 2 other same-filled
    digest = np.zeros(n, dtype="V16")
    for start, chunk in pages.chunks():
        w = chunk.view(np.uint64)
        same = (w == w[:, :1]).all(axis=1)
        k = chunk.shape[0]
        kind[start:start + k][same] = 2
        kind[start:start + k][same & (w[:, 0] == 0)] = 1
        for r in np.flatnonzero(~same):
            digest[start + r] = xxhash.xxh3_128_digest(chunk[r])
    other = np.flatnonzero(kind == 0)
    upid, pidx = np.unique(pids, return_inverse=True)
    with_dup = np.zeros(n, bool)
    cross = np.zeros(n, bool)
    duplicate_pages = 0
    if len(other):
        _u, inv, cnt = np.unique(digest[other], return_inverse=True, return_counts=True)
        inv = inv.reshape(-1)
        with_dup[other] = cnt[inv] > 1
        duplicate_pages = int((cnt - 1).sum())
        codes = np.unique(inv.astype(np.int64) * len(upid) + pidx[other])
        procs_per_content = np.bincount(codes // len(upid), minlength=len(cnt))
        cross[other] = procs_per_content[inv] > 1
    total_dup = int(with_dup.sum())
    comm = {}
    if manifest is not None:
        comm = {int(p["pid"]): str(p.get("comm", "")) for p in manifest.processes if "pid" in p}
    rows = []
    for i, pid in enumerate(upid.tolist()):
        sel = pidx == i
        d = int(with_dup[sel].sum())
        rows.append({"pid": None if manifest is None else int(pid),
                     "comm": "(no manifest: one process)" if manifest is None else comm.get(int(pid), ""),
                     "pages": int(sel.sum()), "page_share": round(float(sel.sum()) / n, 6),
                     "zero_pages": int((kind[sel] == 1).sum()), "same_filled_pages": int((kind[sel] == 2).sum()),
                     "pages_with_duplicate": d, "cross_process_duplicates": int(cross[sel].sum()),
                     "share_of_duplicates": round(d / total_dup, 6) if total_dup else 0.0})
    summary = {"pages": n, "processes": len(upid), "zero_pages": int((kind == 1).sum()),
               "same_filled_pages": int((kind == 2).sum()), "pages_with_duplicate": total_dup,
               "duplicate_pages": duplicate_pages}
    return summary, rows


def run_page_set(job: dict) -> dict:
    """Run on a worker: every mechanism on one page set, and its per-process profile."""
    from engine.mechanisms import Workload, simulate_all
    from engine.workloads.distributed import check_stamp
    from engine.workloads.manifest import resolve_manifest
    path = job["path"]
    check_stamp(path, job["stamp"])
    t0 = time.perf_counter()
    pages = PageSet.open(path)
    try:
        man = resolve_manifest(path, len(pages))
        wl = Workload(pages, man, name=path, **job["workload"])
        out = simulate_all(wl, job["mechanisms"], job["params"])
        summary, procs = process_breakdown(pages, man)
    finally:
        with contextlib.suppress(BufferError):
            pages.close()
    return {"format": PART_FORMAT, "version": PART_VERSION, "key": job["key"], "page_set": path,
            "name": page_set_name(path), "options": job["options"], "summary": summary, "result": out,
            "processes": procs, "elapsed_s": round(time.perf_counter() - t0, 3),
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


def page_set_name(path: str) -> str:
    b = os.path.basename(path)
    return b[:-len(".pages")] if b.endswith(".pages") else b


# ---- parts --------------------------------------------------------------------------------------
def load_part(parts_dir: Path, key: str) -> dict | None:
    """A finished page set's result, or None when absent or not a complete part of this key."""
    from engine.fileio import read_input
    p = parts_dir / f"{key}.json"
    if not os.path.isfile(p) or os.path.islink(p):
        return None
    try:
        d = json.loads(read_input(p, "JSON file"))
    except (InputError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("format") != PART_FORMAT or d.get("key") != key:
        return None
    return d


def save_part(parts_dir: Path, part: dict) -> None:
    from engine.fileio import AtomicFile
    # the name is our own key (hex); a file of that name is an earlier, unreadable part of ours
    with AtomicFile(parts_dir / f"{part['key']}.json", replaceable=lambda _p: True) as f:
        f.write(json.dumps(part, default=repr).encode())    # key order kept: mechanisms in the order run


# ---- tables -------------------------------------------------------------------------------------
def part_rows(part: dict) -> list[dict]:
    """The tidy rows of one page set: one per mechanism, every measure flattened
    (``work.*``, ``mm_stat.*``, ``mm_stat.ksm.*``)."""
    s = part["summary"]
    wl = part["options"]["workload"]
    rows = []
    results = part["result"]["mechanisms"]
    for mech in part["options"]["mechanisms"]:
        r = results[mech]
        row = {"page_set": part["page_set"], "name": part["name"], "pages": s["pages"], "processes": s["processes"],
               "zero_pages": s["zero_pages"], "same_filled_pages": s["same_filled_pages"],
               "pages_with_duplicate": s["pages_with_duplicate"], "mechanism": mech, "variant": r["variant"],
               "saved_bytes": r["saved_bytes"], "metadata_bytes": r["metadata_bytes"],
               "net_saved_bytes": r["net_saved_bytes"],
               "net_saved_share": r["net_saved_bytes"] / (s["pages"] * PAGE_SIZE),
               "pages_merged": r["pages_merged"], "verified_readback": bool(r["verified_readback"])}
        for k, v in r["work"].items():
            row[f"work.{k}"] = v
        _flatten(row, "mm_stat", r.get("mm_stat") or {})
        row.update({"swap_fraction": wl["swap_fraction"], "policy": wl["policy"], "seed": wl["seed"],
                    "compact": wl["compact"], "elapsed_s": part["elapsed_s"]})
        rows.append(row)
    return rows


def _flatten(row: dict, prefix: str, d: dict) -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            _flatten(row, f"{prefix}.{k}", v)
        else:
            row[f"{prefix}.{k}"] = v


def study_table(parts: list[dict]):
    """The tidy table (pandas): one row per page set and mechanism, in input order; measures
    a mechanism does not have (``mm_stat`` of a design without zram fields) are null."""
    import pandas as pd
    rows = [r for p in parts for r in part_rows(p)]
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    # keep the measures grouped: work.* then mm_stat.* before the workload columns
    tail = ["swap_fraction", "policy", "seed", "compact", "elapsed_s"]
    lead = [c for c in cols if c not in tail and not c.startswith(("work.", "mm_stat."))]
    cols = lead + [c for c in cols if c.startswith("work.")] + [c for c in cols if c.startswith("mm_stat.")] + tail
    df = pd.DataFrame(rows, columns=cols)
    for c in cols:
        if c.startswith(("work.", "mm_stat.")) or c in ("pages", "processes", "zero_pages", "same_filled_pages",
                                                        "pages_with_duplicate", "saved_bytes", "metadata_bytes",
                                                        "net_saved_bytes", "pages_merged", "seed"):
            df[c] = df[c].astype("Int64")
    for c in ("verified_readback", "compact"):
        df[c] = df[c].astype(bool)
    for c in ("page_set", "name", "mechanism", "variant", "policy"):
        df[c] = df[c].astype("string")
    return df


def process_table(parts: list[dict]):
    import pandas as pd
    rows = [{"page_set": p["page_set"], "name": p["name"], **r} for p in parts for r in p["processes"]]
    df = pd.DataFrame(rows, columns=list(PROCESS_LEAD) + ["pages", "page_share", "zero_pages", "same_filled_pages",
                                                          "pages_with_duplicate", "cross_process_duplicates",
                                                          "share_of_duplicates"])
    df["pid"] = df["pid"].astype("Int64")
    return df


def _csv_head_is(path: Path, lead) -> bool:
    from engine.fileio import open_input
    try:
        with open_input(path, "earlier output") as f:
            return f.read(200).startswith((",".join(lead) + ",").encode())
    except InputError:
        return False


def _is_study_parquet(path: Path) -> bool:
    try:
        import pyarrow.parquet as pq
        meta = pq.read_schema(str(path)).metadata or {}
    except Exception:                      # noqa: BLE001 - anything unreadable is not ours
        return False
    return meta.get(PARQUET_MARK) is not None


def output_paths(out_dir: Path) -> dict:
    return {"parquet": out_dir / "study.parquet", "csv": out_dir / "study.csv",
            "processes": out_dir / "processes.csv", "report": out_dir / "fleet.html"}


def replaceable_outputs() -> dict:
    """For each output, the test that an existing file is an earlier study's (replaced
    without ``--force``)."""
    from .fleet import is_fleet_report
    return {"parquet": _is_study_parquet, "csv": lambda q: _csv_head_is(q, TABLE_LEAD),
            "processes": lambda q: _csv_head_is(q, PROCESS_LEAD), "report": is_fleet_report}


def check_outputs(out_dir: Path, force: bool = False) -> None:
    """Refuse, before any work, outputs that would replace a file that is not a study's."""
    from engine.fileio import check_target
    rep = replaceable_outputs()
    for k, p in output_paths(out_dir).items():
        check_target(p, force=force, replaceable=rep[k])


def write_tables(out_dir: Path, table, processes, force: bool = False) -> dict:
    import io
    import pyarrow as pa
    import pyarrow.parquet as pq
    from engine.fileio import AtomicFile

    from .exports import csv_bytes
    paths = output_paths(out_dir)
    rep = replaceable_outputs()
    t = pa.Table.from_pandas(table, preserve_index=False)
    t = t.replace_schema_metadata({**(t.schema.metadata or {}), PARQUET_MARK: str(PART_VERSION).encode()})
    buf = io.BytesIO()
    pq.write_table(t, buf)
    with AtomicFile(paths["parquet"], force=force, replaceable=rep["parquet"]) as f:
        f.write(buf.getvalue())
    with AtomicFile(paths["csv"], force=force, replaceable=rep["csv"]) as f:
        f.write(csv_bytes(table))
    with AtomicFile(paths["processes"], force=force, replaceable=rep["processes"]) as f:
        f.write(csv_bytes(processes))
    return {k: v for k, v in paths.items() if k != "report"}


# ---- the study ----------------------------------------------------------------------------------
@dataclass
class Study:
    out_dir: Path
    page_sets: list[str]
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    where: str = ""
    table: object = None
    processes: object = None
    outputs: dict = field(default_factory=dict)

    @property
    def lost(self) -> list[tuple[str, str]]:
        """(page set, mechanism) pairs whose read-back differed from what was written."""
        t = self.table
        bad = t[~t["verified_readback"]]
        return list(zip(bad["page_set"], bad["mechanism"]))


def study_options(mechanisms, params: dict | None, workload: dict | None) -> dict:
    from engine.mechanisms import DEFAULT_ORDER
    wl = {"swap_fraction": 1.0, "policy": "lru", "seed": 0, "compact": False}
    wl.update(workload or {})
    if not 0.0 <= float(wl["swap_fraction"]) <= 1.0:
        raise InputError(f"--swap-fraction: {wl['swap_fraction']} is not between 0 and 1")
    names = list(mechanisms or DEFAULT_ORDER)
    return {"mechanisms": names, "params": {k: v for k, v in (params or {}).items() if k in names}, "workload": wl}


def run_study(inputs, out_dir, mechanisms=None, params: dict | None = None, workload: dict | None = None,
              workers: int | None = None, scheduler: str | None = None, force: bool = False,
              progress: bool | None = None, report: bool = True, insecure_scheduler: bool = False) -> Study:
    """Run every mechanism on every page set named by ``inputs`` (see :func:`resolve_inputs`),
    one Dask task per page set not already finished in ``out_dir/parts``; write the tables and
    the fleet report in ``out_dir``."""
    from tqdm.auto import tqdm
    from engine.workloads.distributed import check_address, dask_client, task_result
    if workers is not None and scheduler is not None:
        raise InputError("--workers and --scheduler exclude each other (the cluster at --scheduler has its own workers)")
    if workers is not None and workers < 1:
        raise InputError(f"--workers: {workers} is not a number of workers (1 or more)")
    if scheduler is not None:
        check_address(scheduler)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory (the study writes several files in -o DIR)")
    options = study_options(mechanisms, params, workload)
    refs = [check_page_set(p) for p in resolve_inputs(inputs)]
    check_outputs(out, force)
    parts_dir = out / "parts"
    if os.path.lexists(parts_dir) and (os.path.islink(parts_dir) or not parts_dir.is_dir()):
        raise InputError(f"{parts_dir}: exists and is not a directory (the study keeps finished page sets there)")
    st = Study(out, [r.path for r in refs])
    done: dict[str, dict] = {}
    todo = []
    for r in refs:
        key = part_key(r, options)
        part = load_part(parts_dir, key)
        if part is not None:
            done[r.path] = part
            st.reused.append(r.path)
        else:
            todo.append({"path": r.path, "stamp": r.stamp, "key": key, "options": options, "pages": r.pages,
                         "mechanisms": options["mechanisms"], "params": options["params"],
                         "workload": options["workload"]})
    if todo:
        errors: list[PagemergeError] = []
        n = min(workers, len(todo)) if workers else None
        if scheduler is None and n is None:
            from engine.workloads.distributed import default_workers
            n = min(default_workers(), len(todo))
        with dask_client(n, scheduler, insecure_scheduler) as client:
            st.where = f"computed on {client.pagemerge_where}"
            # the largest page sets first, so that a long one does not start last and hold up the end
            futs = {client.submit(run_page_set, j, key=f"page-set-{j['key']}", priority=j["pages"]): j for j in todo}
            from distributed import as_completed
            bar = tqdm(total=len(todo), unit="page set", desc="study", disable=None if progress is None else not progress,
                       leave=False)
            try:
                for fut in as_completed(list(futs)):
                    j = futs[fut]
                    try:
                        part = task_result(fut, j["path"])
                    except PagemergeError as e:
                        errors.append(e)
                        continue
                    finally:
                        bar.update(1)
                    save_part(parts_dir, part)
                    done[j["path"]] = part
                    st.computed.append(j["path"])
                    fut.release()
            finally:
                bar.close()
                for f in futs:
                    f.cancel()
        if errors:
            more = f"; {len(errors) - 1} more page set(s) failed" if len(errors) > 1 else ""
            kept = f"; the {len(done)} finished are kept in {parts_dir} and not redone" if done else ""
            raise type(errors[0])(f"{errors[0]}{more}{kept}")
    else:
        st.where = f"nothing computed: all {len(refs)} page set(s) were finished by an earlier run (in {parts_dir})"
    parts = [done[r.path] for r in refs]
    st.table = study_table(parts)
    st.processes = process_table(parts)
    st.outputs = write_tables(out, st.table, st.processes, force=force)
    if report:
        from .fleet import build_fleet_report
        st.outputs["report"] = build_fleet_report(st, output_paths(out)["report"], force=force)
    return st
