"""The report's numbers, said in units a kernel engineer reads at a glance.

Each mechanism's card leads with its net savings (what sharing saved, less the metadata it
spent), as a share of the input and of the baseline pool (upstream zram's ``mem_used_total``
on the same pages), with the gross savings, the metadata, the compression ratio and the pages
shared beside it. Same-filled pages are counted as what they are: pages zram never stored
(their fill value sits in the slot), not savings by sharing. The zram-level stores are also set
out as ``zramctl`` would show them, and the results tables carry units (no raw dumps).
"""
from __future__ import annotations

import html

from engine.pages import PAGE_SIZE

BASELINE = "upstream_zram"


def human(n: float | int | None, signed: bool = False) -> str:
    """Bytes in binary units: ``'39.7 KiB'``; ``'−39.7 KiB'`` for a loss; ``'n/a'`` for none."""
    if n is None or n != n:
        return "n/a"
    sign = "−" if n < 0 else ("+" if signed and n > 0 else "")
    v = abs(float(n))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{sign}{v:,.0f} B" if unit == "B" else f"{sign}{v:,.1f} {unit}"
        v /= 1024
    return ""  # pragma: no cover


def zramctl_size(n: int | None) -> str:
    """A size as zramctl prints it (binary units, one decimal, single-letter suffix): ``'2.1M'``."""
    if n is None:
        return "-"
    v = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if v < 1024 or unit == "T":
            return f"{int(v)}{unit}" if unit == "B" else (f"{v:.1f}".rstrip("0").rstrip(".") + unit)
        v /= 1024
    return ""  # pragma: no cover


def pct(part: float, whole: float | None) -> str:
    if not whole:
        return "n/a"
    return f"{100.0 * part / whole:+.2f} %".replace("-", "−") if part else "0 %"


def ratio(orig: int | None, compr: int | None) -> str:
    return f"{orig / compr:.2f}" if orig and compr else "n/a"


def card(name: str, r: dict, input_bytes: int, baseline_pool: int | None) -> dict:
    """The figures of one mechanism's card, already formatted."""
    mm = r.get("mm_stat") or {}
    net = r["net_saved_bytes"]
    same = mm.get("same_pages", 0)
    pool = mm.get("mem_used_total")
    return {
        "name": name, "net": human(net, signed=True), "net_negative": net < 0,
        "net_of_input": pct(net, input_bytes), "net_of_pool": pct(net, baseline_pool),
        "gross": human(r["saved_bytes"]), "metadata": human(r["metadata_bytes"]),
        "ratio": ratio(mm.get("orig_data_size"), mm.get("compr_data_size")),
        "pages_shared": f"{r['pages_merged']:,}",
        "pool": human(pool) if pool is not None else "n/a",
        "pool_change": human(pool - baseline_pool, signed=True) if pool is not None and baseline_pool else "n/a",
        "same_pages": same, "same_bytes": human(same * PAGE_SIZE),
        "verified": r["verified_readback"],
    }


def cards(results: dict, input_bytes: int) -> list[dict]:
    baseline = (results.get(BASELINE, {}).get("mm_stat") or {}).get("mem_used_total")
    return [card(n, r, input_bytes, baseline) for n, r in results.items()]


def cards_html(results: dict, input_bytes: int) -> str:
    e = html.escape
    out = ['<div class="kpi" id="cards">']
    for c in cards(results, input_bytes):
        same = (f'<span class="pct">{c["same_pages"]:,} same-filled pages not stored ({e(c["same_bytes"])} of input '
                f'kept as a fill value in the slot; not sharing)</span>') if c["same_pages"] else ""
        out.append(
            f'<div data-mechanism="{e(c["name"])}"><span>{e(c["name"])}</span>'
            f'<b class="{"neg" if c["net_negative"] else ""}">net {e(c["net"])}</b>'
            f'<span class="pct">{e(c["net_of_input"])} of the input &middot; {e(c["net_of_pool"])} of the baseline pool</span>'
            f'<span class="meta">gross {e(c["gross"])} &middot; metadata {e(c["metadata"])} &middot; compression ratio '
            f'{e(c["ratio"])} &middot; {e(c["pages_shared"])} pages shared &middot; pool {e(c["pool"])} '
            f'({e(c["pool_change"])} vs {BASELINE}) &middot; read-back '
            + ('<span class="ok">verified</span>' if c["verified"] else '<span class="bad">FAILED</span>')
            + f'</span>{same}</div>')
    out.append("</div>")
    return "".join(out)


ZRAMCTL_COLUMNS = ("NAME", "ALGORITHM", "DATA", "COMPR", "TOTAL", "MEM-LIMIT", "MEM-USED", "ZERO/SAME", "MIGRATED",
                   "COMP-RATIO")


def zramctl_rows(results: dict) -> list[dict]:
    """One row per mechanism with a zram store, in zramctl's columns: DATA orig_data_size,
    COMPR compr_data_size, TOTAL mem_used_total, MEM-LIMIT mem_limit, MEM-USED mem_used_max,
    ZERO/SAME same_pages (pages), MIGRATED pages_compacted (pages)."""
    rows = []
    for n, r in results.items():
        mm = r.get("mm_stat")
        if not mm:
            continue
        rows.append({"NAME": n if n != "ksm" else "ksm (its swap store)", "ALGORITHM": r.get("comp_algorithm", ""),
                     "DATA": zramctl_size(mm["orig_data_size"]), "COMPR": zramctl_size(mm["compr_data_size"]),
                     "TOTAL": zramctl_size(mm["mem_used_total"]),
                     "MEM-LIMIT": zramctl_size(mm["mem_limit"]) if mm.get("mem_limit") else "0B",
                     "MEM-USED": zramctl_size(mm["mem_used_max"]), "ZERO/SAME": f"{mm['same_pages']:,}",
                     "MIGRATED": f"{mm['pages_compacted']:,}",
                     "COMP-RATIO": ratio(mm["orig_data_size"], mm["compr_data_size"])})
    return rows


#: (header, how to get it from a result, what it is)
SAVINGS_COLUMNS = (
    ("net saved", lambda r, b: human(r["net_saved_bytes"], signed=True)),
    ("gross saved", lambda r, b: human(r["saved_bytes"])),
    ("metadata", lambda r, b: human(r["metadata_bytes"])),
    ("pages shared", lambda r, b: f"{r['pages_merged']:,}"),
    ("pool (mem_used_total)", lambda r, b: human((r.get("mm_stat") or {}).get("mem_used_total"))),
    ("pool vs baseline", lambda r, b: human((r.get("mm_stat") or {}).get("mem_used_total", 0) - b, signed=True)
        if b and r.get("mm_stat") else "n/a"),
    ("compressed data", lambda r, b: human((r.get("mm_stat") or {}).get("compr_data_size"))),
    ("compression ratio", lambda r, b: ratio((r.get("mm_stat") or {}).get("orig_data_size"),
                                             (r.get("mm_stat") or {}).get("compr_data_size"))),
    ("same-filled pages not stored", lambda r, b: f"{(r.get('mm_stat') or {}).get('same_pages', 0):,}"),
    ("read-back", lambda r, b: "verified" if r["verified_readback"] else "FAILED"),
)
WORK_COLUMNS = (
    ("pages hashed", "pages_hashed", False), ("bytes hashed", "bytes_hashed", True),
    ("compares", "compares", False), ("bytes compared", "bytes_compared", True),
    ("compressions", "compressions", False), ("decompressions", "decompressions", False),
)


def results_html(results: dict) -> str:
    """Two tables with units: what each mechanism saved and spent, and the work it did."""
    e = html.escape
    b = (results.get(BASELINE, {}).get("mm_stat") or {}).get("mem_used_total")
    out = ['<table class="results" id="results-savings"><thead><tr><th>mechanism</th>']
    out += [f"<th>{e(h)}</th>" for h, _ in SAVINGS_COLUMNS] + ["<th>algorithm</th></tr></thead><tbody>"]
    for n, r in results.items():
        cells = "".join(f"<td>{e(f(r, b))}</td>" for _, f in SAVINGS_COLUMNS)
        out.append(f'<tr data-mechanism="{e(n)}"><td>{e(n)}</td>{cells}<td>{e(r.get("comp_algorithm", ""))}</td></tr>')
    out.append("</tbody></table>")
    out.append('<table class="results" id="results-work"><thead><tr><th>mechanism</th>')
    out += [f"<th>{e(h)}</th>" for h, _, _ in WORK_COLUMNS] + ["</tr></thead><tbody>"]
    for n, r in results.items():
        w = r["work"]
        cells = "".join(f"<td>{e(human(w.get(k, 0)) if is_bytes else format(w.get(k, 0), ','))}</td>"
                        for _, k, is_bytes in WORK_COLUMNS)
        out.append(f'<tr data-mechanism="{e(n)}"><td>{e(n)}</td>{cells}</tr>')
    out.append("</tbody></table>")
    rows = zramctl_rows(results)
    if rows:
        out.append('<h3>The zram stores as zramctl shows them</h3><table class="zramctl" id="zramctl"><thead><tr>')
        out += [f"<th>{c}</th>" for c in ZRAMCTL_COLUMNS] + ["</tr></thead><tbody>"]
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{e(str(row[c]))}</td>" for c in ZRAMCTL_COLUMNS) + "</tr>")
        out.append("</tbody></table>")
    return "".join(out)


def matrix_html(matrix) -> str:
    """The claim dependency matrix (row depends on column) as a plain table: one row and one
    column per claim, the kind of dependency in the cell, a dot where there is none."""
    if matrix is None:
        return ""
    e = html.escape
    cols = list(matrix.columns)
    out = ['<table class="matrix" id="dependency-matrix"><thead><tr><th>claim</th>']
    out += [f"<th>{e(str(c))}</th>" for c in cols] + ["</tr></thead><tbody>"]
    for idx, row in matrix.iterrows():
        cells = "".join(f"<td>{e(str(v)) if str(v).strip() else '&middot;'}</td>" for v in row)
        out.append(f'<tr><th>claim {e(str(idx))}</th>{cells}</tr>')
    out.append("</tbody></table>")
    return "".join(out)
