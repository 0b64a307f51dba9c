"""The fleet report: one self-contained HTML page for a study over many page sets.

Sections: what was studied and where it ran; the distribution of net savings per mechanism
across the fleet (a box plot with every page set as a point, inline SVG); a per-process
breakdown (pages per process and each process's share of the duplicate pages, by process
name across the fleet and per page set); the outliers (page sets whose net savings lie
more than 1.5 interquartile ranges outside the quartiles of their mechanism); and the table
of page sets. Net savings are compared as a share of each page set's bytes, so dumps of
different sizes sit on one scale; the bytes are given beside them.

No scripts, no network: inline CSS and SVG. All text is escaped.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from . import figures

FLEET_MARK = b'<meta name="pagemerge-report" content="fleet">'
GENERATOR_MARK = b'<meta name="generator" content="pagemerge">'
DISCLAIMER = ("Technical evidence about memory-deduplication mechanisms, measured on the page sets named here. "
              "It states no legal conclusion and is not legal advice.")
#: rows shown in the per-page-set tables (the CSV files have them all)
MAX_ROWS = 500


def iqr_fences(values) -> dict:
    """Quartiles (linear interpolation, as numpy's default) and Tukey's fences at 1.5 IQR."""
    v = np.asarray(list(values), dtype=float)
    q1, q3 = np.percentile(v, [25, 75])
    iqr = q3 - q1
    return {"q1": float(q1), "q3": float(q3), "iqr": float(iqr), "low": float(q1 - 1.5 * iqr),
            "high": float(q3 + 1.5 * iqr)}


def outliers(table, measure: str = "net_saved_share"):
    """Per mechanism, the fences of ``measure`` and the rows beyond them:
    returns (fences DataFrame indexed by mechanism, outlier rows with a ``side`` column)."""
    import pandas as pd
    fences, rows = [], []
    for mech, g in table.groupby("mechanism", sort=False):
        f = iqr_fences(g[measure])
        fences.append({"mechanism": mech, "page_sets": len(g), **f})
        lo = g[g[measure] < f["low"]].assign(side="below")
        hi = g[g[measure] > f["high"]].assign(side="above")
        rows.extend([lo, hi])
    fdf = pd.DataFrame(fences).set_index("mechanism") if fences else pd.DataFrame()
    odf = pd.concat(rows) if rows else table.iloc[0:0].assign(side=[])
    return fdf, odf


def mechanism_summary(table):
    import pandas as pd
    out = []
    for mech, g in table.groupby("mechanism", sort=False):
        s = g["net_saved_share"]
        out.append({"mechanism": mech, "variant": ", ".join(sorted(set(g["variant"]))), "page_sets": len(g),
                    "median": float(s.median()), "q1": float(s.quantile(0.25)), "q3": float(s.quantile(0.75)),
                    "min": float(s.min()), "max": float(s.max()),
                    "net_saved_bytes": int(g["net_saved_bytes"].sum()),
                    "saved_bytes": int(g["saved_bytes"].sum()), "metadata_bytes": int(g["metadata_bytes"].sum()),
                    "readback_failures": int((~g["verified_readback"]).sum())})
    return pd.DataFrame(out)


def process_summary(processes):
    """By process name across the fleet: pages, duplicate pages and their shares."""
    import pandas as pd
    if processes.empty:
        return pd.DataFrame()
    g = processes.groupby("comm", sort=False).agg(
        page_sets=("page_set", "nunique"), processes=("pid", "size"), pages=("pages", "sum"),
        zero_pages=("zero_pages", "sum"), same_filled_pages=("same_filled_pages", "sum"),
        pages_with_duplicate=("pages_with_duplicate", "sum"),
        cross_process_duplicates=("cross_process_duplicates", "sum"))
    g["page_share"] = g["pages"] / g["pages"].sum()
    total = g["pages_with_duplicate"].sum()
    g["share_of_duplicates"] = g["pages_with_duplicate"] / total if total else 0.0
    g["duplicate_share_of_own_pages"] = g["pages_with_duplicate"] / g["pages"]
    return g.sort_values(["pages_with_duplicate", "pages"], ascending=False).reset_index()


def net_savings_svg(table, fences) -> str:
    """Box plot of net savings (share of page-set bytes) per mechanism, every page set a point;
    points beyond the fences in red."""
    figures._setup()
    import matplotlib.pyplot as plt
    mechs = list(dict.fromkeys(table["mechanism"]))
    data = [table.loc[table["mechanism"] == m, "net_saved_share"].to_numpy(float) * 100 for m in mechs]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(mechs) + 1.4))
    ax.boxplot(data, orientation="horizontal", showfliers=False, widths=0.5,
               medianprops={"color": "#2f5f9e", "linewidth": 1.6}, boxprops={"color": "#555"},
               whiskerprops={"color": "#555"}, capprops={"color": "#555"})
    rng = np.random.default_rng(0)                   # fixed jitter: the same study draws the same figure
    for i, (m, v) in enumerate(zip(mechs, data), start=1):
        f = fences.loc[m] if m in fences.index else None
        out = np.zeros(len(v), bool) if f is None else (v / 100 < f["low"]) | (v / 100 > f["high"])
        y = i + rng.uniform(-0.18, 0.18, len(v))
        ax.scatter(v[~out], y[~out], s=12, color="#2b7a3d", alpha=0.7, linewidths=0, zorder=3)
        ax.scatter(v[out], y[out], s=22, color="#b9462e", marker="D", linewidths=0, zorder=4)
    ax.set_yticks(range(1, len(mechs) + 1), mechs)
    ax.invert_yaxis()
    ax.axvline(0, color="#999", linewidth=0.6)
    ax.set_xlabel("net savings, % of the page set's bytes (saved minus metadata)")
    ax.set_title("Net savings per mechanism across the fleet (each point a page set; red: outlier)")
    return figures._svg(fig)


def _pct(v: float) -> str:
    return f"{v * 100:,.2f}%"


def build_fleet_report(study, out_path, force: bool = False, now: dt.datetime | None = None) -> Path:
    """Write the fleet report of ``study`` (an :class:`reports.study.Study` with its tables)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    from engine.fileio import AtomicFile
    from engine.pages import PAGE_SIZE
    table, procs = study.table, study.processes
    fences, outl = outliers(table)
    summ = mechanism_summary(table)
    psum = process_summary(procs)
    page_sets = table.drop_duplicates("page_set")
    pivot = table.pivot_table(index="page_set", columns="mechanism", values="net_saved_share", sort=False)
    mechs = list(dict.fromkeys(table["mechanism"]))
    ps_rows = []
    for _, r in page_sets.head(MAX_ROWS).iterrows():
        ps_rows.append({"name": r["name"], "path": r["page_set"], "pages": int(r["pages"]),
                        "processes": int(r["processes"]), "zero": int(r["zero_pages"]),
                        "same": int(r["same_filled_pages"]), "dup": int(r["pages_with_duplicate"]),
                        "net": [pivot.loc[r["page_set"], m] for m in mechs]})
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["pct"] = _pct
    env.filters["kib"] = lambda b: f"{b / 1024:,.1f}"
    env.filters["num"] = lambda v: f"{int(v):,}"
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    wl = table.iloc[0]
    page = env.get_template("fleet.html.j2").render(
        generated=now.isoformat(), disclaimer=DISCLAIMER, generator_mark=Markup(GENERATOR_MARK.decode()),
        fleet_mark=Markup(FLEET_MARK.decode()), n_sets=len(page_sets), n_pages=int(page_sets["pages"].sum()),
        n_bytes=int(page_sets["pages"].sum()) * PAGE_SIZE, n_procs=len(procs), mechs=mechs,
        workload={k: wl[k] for k in ("swap_fraction", "policy", "seed", "compact")}, where=study.where,
        computed=len(study.computed), reused=len(study.reused), summary=summ.to_dict("records"),
        lost=study.lost, svg=Markup(net_savings_svg(table, fences)),
        fences=fences.reset_index().to_dict("records"), outliers=outl.to_dict("records"),
        proc_summary=psum.head(MAX_ROWS).to_dict("records"), n_proc_names=len(psum),
        proc_rows=procs.head(MAX_ROWS).to_dict("records"), page_sets=ps_rows, max_rows=MAX_ROWS,
        out_dir=str(study.out_dir))
    out = Path(out_path)
    with AtomicFile(out, force=force, replaceable=is_fleet_report) as f:
        f.write(page.encode())
    return out


def is_fleet_report(path: Path) -> bool:
    """Whether the regular file ``path`` is an earlier fleet report (its marks in the head)."""
    from engine.errors import InputError
    from engine.fileio import open_input
    try:
        with open_input(path, "earlier output") as f:
            head = f.read(4096)
    except InputError:
        return False
    return GENERATOR_MARK in head and FLEET_MARK in head
