"""``pagemerge sweep``: vary one parameter over a range on the same pages and set every
mechanism's net savings against it (CSV data, SVG for the report, PNG for notebooks).

Parameters (``PARAM=v1,v2,...``):

- ``swap-fraction``: the share of pages swapped out (0 to 1), for every mechanism;
- ``predetermined-size``: the claimed method's predetermined size in bytes (1 to 4096);
- ``max-page-sharing``: KSM's max_page_sharing (2 to 2^20);
- ``hash``: zram_dedup's checksum (jhash or xxhash32).

Each value runs every mechanism once on the same workload; a parameter a mechanism does not
have leaves it unchanged (its line is flat, which is itself a finding).
"""
from __future__ import annotations

import copy
import math

from engine.errors import InputError

PARAMS = {
    "swap-fraction": "the share of pages swapped out, 0 to 1",
    "predetermined-size": "patent_claim1's predetermined size in bytes, 1 to 4096",
    "max-page-sharing": "KSM's max_page_sharing, 2 to 1048576",
    "hash": "zram_dedup's checksum: jhash or xxhash32",
}
UNITS = {"swap-fraction": "fraction of pages swapped out", "predetermined-size": "predetermined size (bytes)",
         "max-page-sharing": "max_page_sharing", "hash": "zram_dedup checksum"}
MAX_VALUES = 64


def _num(param: str, t: str, lo, hi, conv, what: str = "sweep"):
    try:
        v = conv(t) if len(t) <= 40 and t.isascii() else None
    except ValueError:
        v = None
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or not lo <= v <= hi:
        raise InputError(f"{what}: {param}: {t[:40]!r} is not a value from {lo} to {hi}")
    return v


def parse_spec(spec: str, what: str = "sweep") -> tuple[str, list]:
    """``'swap-fraction=0.25,0.5,1'`` -> ``('swap-fraction', [0.25, 0.5, 1.0])``; the parameter's
    name may use underscores. Unknown names and bad values are refused, naming the valid ones;
    ``what`` names the option in the message."""
    if "=" not in spec:
        raise InputError(f"{what}: {spec[:60]!r} is not PARAM=v1,v2,... (PARAM one of {', '.join(PARAMS)})")
    name, _, vals = spec.partition("=")
    param = name.strip().replace("_", "-")
    if param not in PARAMS:
        raise InputError(f"{what}: unknown parameter {name.strip()[:40]!r}; use one of {', '.join(PARAMS)}")
    items = [t.strip() for t in vals.split(",") if t.strip()]
    if not items:
        raise InputError(f"{what}: {param}: no values given")
    if len(items) > MAX_VALUES:
        raise InputError(f"{what}: {param}: at most {MAX_VALUES} values")
    if param == "swap-fraction":
        values = [_num(param, t, 0.0, 1.0, float, what) for t in items]
    elif param == "predetermined-size":
        values = [_num(param, t, 1, 4096, lambda s: int(s) if s.isdigit() else None, what) for t in items]
    elif param == "max-page-sharing":
        values = [_num(param, t, 2, 1 << 20, lambda s: int(s) if s.isdigit() else None, what) for t in items]
    else:
        bad = [t for t in items if t not in ("jhash", "xxhash32")]
        if bad:
            raise InputError(f"{what}: hash: unknown {bad[0][:40]!r}; use jhash or xxhash32")
        values = items
    return param, list(dict.fromkeys(values))


def _apply(param: str, value, workload, params: dict):
    """The workload and per-mechanism parameters with ``param`` set to ``value``."""
    from engine.mechanisms import Workload
    params = copy.deepcopy(params)
    wl = workload
    if param == "swap-fraction":
        wl = Workload(workload.pages, workload.manifest, value, workload.policy, workload.seed, workload.compact,
                      name=workload.name)
    elif param == "predetermined-size":
        params.setdefault("patent_claim1", {})["predetermined_size"] = value
    elif param == "max-page-sharing":
        params.setdefault("ksm", {})["max_page_sharing"] = value
    elif param == "hash":
        params.setdefault("zram_dedup", {})["hash"] = value
    return wl, params


def run_sweep(workload, param: str, values: list, mechanisms, params: dict | None = None, progress=None):
    """Every mechanism at every value: a DataFrame with columns ``param`` (the parameter's name),
    ``value``, ``mechanism``, ``net_saved_bytes``, ``saved_bytes``, ``metadata_bytes`` (bytes),
    ``pages_merged`` (pages), ``mem_used_total`` (bytes, the zsmalloc pool; NaN without one) and
    ``verified_readback`` (bool). ``progress``: called with each (value, mechanism) done."""
    import pandas as pd

    from engine.mechanisms import make
    rows = []
    for v in values:
        wl, ps = _apply(param, v, workload, params or {})
        for name in mechanisms:
            m = make(name, **ps.get(name, {}))
            m.run(wl)
            r = m.result()
            m.release()
            rows.append({"param": param, "value": v, "mechanism": name, "net_saved_bytes": r["net_saved_bytes"],
                         "saved_bytes": r["saved_bytes"], "metadata_bytes": r["metadata_bytes"],
                         "pages_merged": r["pages_merged"],
                         "mem_used_total": (r.get("mm_stat") or {}).get("mem_used_total", float("nan")),
                         "verified_readback": r["verified_readback"]})
            if progress:
                progress(v, name)
    return pd.DataFrame(rows)


def sweep_figure(df, fmt: str = "svg"):
    """Net savings (KiB) of every mechanism against the swept value and, beside it, the size
    of the zsmalloc pool (``mem_used_total``, MiB) of each mechanism that has one, so a saving
    reads against the memory it is a part of."""
    from .plots import _out, _setup, colour
    _setup()
    import matplotlib.pyplot as plt
    param = df["param"].iloc[0]
    values = list(dict.fromkeys(df["value"]))
    categorical = any(isinstance(v, str) for v in values)
    pooled = [m for m, g in df.groupby("mechanism", sort=False) if g["mem_used_total"].notna().any()]
    fig, axes = plt.subplots(1, 2 if pooled else 1, figsize=(11 if pooled else 7, 3.4), squeeze=False)
    ax, pool_ax = axes[0][0], (axes[0][1] if pooled else None)
    for i, (name, g) in enumerate(df.groupby("mechanism", sort=False)):
        xs = [values.index(v) for v in g["value"]] if categorical else list(g["value"])
        ax.plot(xs, g["net_saved_bytes"] / 1024, "o-", color=colour(name, i), label=name, linewidth=1.4)
        if name in pooled:
            pool_ax.plot(xs, g["mem_used_total"] / (1 << 20), "o-", color=colour(name, i), label=name, linewidth=1.4)
    for a in axes[0]:
        if categorical:
            a.set_xticks(range(len(values)), values)
        a.set_xlabel(UNITS.get(param, param))
    ax.axhline(0, color="#555", linewidth=0.6)
    ax.set_ylabel("net saved, KiB")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"Net savings as {param} varies (same pages)")
    if pool_ax is not None:
        pool_ax.set_ylim(bottom=0)
        pool_ax.set_ylabel("zsmalloc pool (mem_used_total), MiB")
        pool_ax.set_title("The pool the savings are measured in")
    fig.tight_layout()
    return _out(fig, fmt)


def sweep_html(df) -> str:
    """The report's section body: the plot, then the data as two tables (net savings of every
    mechanism; the pool of every mechanism that has one)."""
    import html
    from .numbers import human
    param = df["param"].iloc[0]
    values = list(dict.fromkeys(df["value"]))
    mechs = list(dict.fromkeys(df["mechanism"]))
    net = {(r.value, r.mechanism): r.net_saved_bytes for r in df.itertuples()}
    pool = {(r.value, r.mechanism): r.mem_used_total for r in df.itertuples()}
    pooled = [m for m in mechs if any(pool[(v, m)] == pool[(v, m)] for v in values)]   # not NaN somewhere
    head = "".join(f"<th>{html.escape(str(v))}</th>" for v in values)

    def table(tid: str, label: str, cells, rows, signed: bool) -> str:
        body = "".join(f'<tr data-mechanism="{html.escape(m)}"><td>{html.escape(m)}</td>'
                       + "".join(f"<td>{html.escape(human(cells[(v, m)], signed=signed))}</td>" for v in values)
                       + "</tr>" for m in rows)
        return (f'<table class="results" id="{tid}"><thead><tr><th>{html.escape(label)} at {html.escape(param)} ='
                f"</th>{head}</tr></thead><tbody>{body}</tbody></table>")
    return (f'<div class="figure" id="sweep-figure">{sweep_figure(df)}</div>'
            + table("sweep-table", "net saved", net, mechs, True)
            + (table("sweep-pool-table", "zsmalloc pool (mem_used_total)", pool, pooled, False) if pooled else ""))


def write_sweep(df, out_dir, force: bool = False) -> list:
    """``sweep-PARAM.csv`` (the data), ``.svg`` (for the report) and ``.png`` (for notebooks);
    a rerun replaces its own earlier files."""
    from pathlib import Path

    from engine.fileio import AtomicFile
    param = df["param"].iloc[0]
    out = Path(out_dir)
    from .exports import csv_bytes
    csv = csv_bytes(df)
    head = csv.split(b"\n", 1)[0] + b"\n"
    files = [(out / f"sweep-{param}.csv", csv, lambda q: _starts(q, head)),
             (out / f"sweep-{param}.svg", sweep_figure(df, "svg").encode(), lambda q: _starts(q, b"<svg")),
             (out / f"sweep-{param}.png", sweep_figure(df, "png"), lambda q: _starts(q, b"\x89PNG"))]
    for path, data, ours in files:
        with AtomicFile(path, force=force, replaceable=ours) as f:
            f.write(data)
    return [p for p, _, _ in files]


def _starts(path, mark: bytes) -> bool:
    from engine.fileio import open_input
    try:
        with open_input(path, "earlier output") as f:
            return f.read(len(mark)) == mark
    except InputError:
        return False
