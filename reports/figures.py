"""Figures for the report, as inline SVG: the indirection chain per mechanism (hand-drawn),
and matplotlib plots rendered deterministically (fixed hash salt, no date)."""
from __future__ import annotations

import html
import io

CHAIN = ["virtual address", "PTE", "frame | swap entry", "zram slot", "zsmalloc handle", "object", "zspage"]
# which arrow (index i: CHAIN[i] -> CHAIN[i+1]) each link repoints
LINK_ARROW = {"PTE -> page frame": 1, "slot -> handle": 3, "handle -> object": 4,
              "virtual address -> stored page": 2}
LINK_NOTE = {
    "PTE -> page frame": "the PTEs of identical pages point at one write-protected KSM page",
    "slot -> handle": "several zram slots point at one zsmalloc handle (refcounted)",
    "handle -> object": "several zsmalloc handles point at one object in a zspage",
    "virtual address -> stored page": "the candidate's PTE gets a swap entry naming the found stored page's slot",
    "none": "nothing is shared; identical pages are stored twice",
}


def chain_svg(mech: str, title: str, link: str, repointed: int) -> str:
    w_box, h_box, gap, x0 = 118, 40, 26, 6
    width = x0 + len(CHAIN) * w_box + (len(CHAIN) - 1) * gap + 6
    height = 86
    hot = LINK_ARROW.get(link)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chain" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" aria-label="{html.escape(title)}: {html.escape(link)}">']
    for i, name in enumerate(CHAIN):
        x = x0 + i * (w_box + gap)
        lit = hot is not None and i in (hot, hot + 1)
        out.append(f'<rect x="{x}" y="8" width="{w_box}" height="{h_box}" rx="6" class="box{" lit" if lit else ""}"/>')
        out.append(f'<text x="{x + w_box / 2}" y="{8 + h_box / 2 + 4}" text-anchor="middle" class="boxlabel">'
                   f'{html.escape(name)}</text>')
        if i < len(CHAIN) - 1:
            ax = x + w_box
            is_hot = hot == i
            cls = "arrow hot" if is_hot else "arrow"
            out.append(f'<line x1="{ax + 2}" y1="28" x2="{ax + gap - 4}" y2="28" class="{cls}"/>')
            out.append(f'<polygon points="{ax + gap - 4},23 {ax + gap + 2},28 {ax + gap - 4},33" class="{cls}"/>')
            if is_hot:
                out.append(f'<text x="{ax + gap / 2}" y="66" text-anchor="middle" class="hotlabel">shared here '
                           f'({repointed:,} in this run)</text>')
    if hot is None:
        out.append(f'<text x="{width / 2}" y="70" text-anchor="middle" class="nolabel">no link is shared</text>')
    out.append("</svg>")
    return "".join(out)


def _svg(fig) -> str:
    import matplotlib.pyplot as plt
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg"):]


def _setup():
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "pagemerge"
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["font.size"] = 9


def savings_svg(df) -> str:
    _setup()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = list(df.index)
    x = range(len(names))
    kib = 1024
    ax.bar([i - 0.27 for i in x], df["saved_bytes"] / kib, width=0.27, label="saved", color="#2b7a3d")
    ax.bar(list(x), df["metadata_bytes"] / kib, width=0.27, label="metadata cost", color="#b9462e")
    ax.bar([i + 0.27 for i in x], df["net_saved_bytes"] / kib, width=0.27, label="net", color="#2f5f9e")
    ax.axhline(0, color="#555", linewidth=0.6)
    ax.set_xticks(list(x), names, rotation=15)
    ax.set_ylabel("KiB")
    ax.legend(frameon=False, ncols=3)
    ax.set_title("Bytes saved, metadata spent, and net, per mechanism")
    return _svg(fig)


def memory_svg(df) -> str:
    _setup()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 2.6))
    names = [n for n in df.index if df.loc[n, "mem_used_total"] == df.loc[n, "mem_used_total"]]
    ax.barh(names, [df.loc[n, "mem_used_total"] / 1024 for n in names], color="#6d5a9c")
    ax.set_xlabel("zsmalloc pool (mem_used_total), KiB")
    ax.invert_yaxis()
    ax.set_title("Compressed store after the run (upstream zram is the baseline)")
    return _svg(fig)


def timeline_svg(refs: list[dict], priority) -> str:
    _setup()
    import datetime as dt
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(refs) + 1.0))
    ys = list(range(len(refs)))
    for y, r in zip(ys, refs):
        lo, hi = r["range"]
        mid = lo + (hi - lo) / 2
        color = {True: "#2b7a3d", False: "#8a8a8a", None: "#c08a00"}[r["predates_priority"]]
        ax.plot([lo, hi + dt.timedelta(days=1)], [y, y], color=color, linewidth=5, solid_capstyle="butt")
        ax.plot([mid], [y], "o", color=color, markersize=4)
        ax.text(hi + dt.timedelta(days=60), y, f'{r["id"]} ({r["date"]})', va="center", fontsize=7.5)
    ax.axvline(priority, color="#b9462e", linestyle="--", linewidth=1)
    ax.text(priority, -1.0, f" priority date {priority}", color="#b9462e", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(len(refs), -1.5)
    ax.set_xlim(dt.date(2001, 1, 1), dt.date(2027, 12, 31))
    ax.set_title("Dated references against the priority date (green: dated before; grey: on or after)")
    for s in ("left", "right", "top"):
        ax.spines[s].set_visible(False)
    return _svg(fig)
