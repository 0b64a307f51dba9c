"""Helpers that let the notebooks show what the report shows, self-contained: the chain drawing
with its styles inline (a notebook has none of the report's CSS), the engine's events as typed
tables (one per kind: addresses in hex, pids and counts as integers, no NaN grid), plots with
titles in the report's colours, and a page set's processes as they are in the set.
"""
from __future__ import annotations

import re
from collections import Counter

from .figures import chain_svg
from .plots import MECH_COLOURS, colour

#: the report's chain styles, inlined per element class
_CHAIN_STYLE = {
    "box": "fill:#fff;stroke:#9aa4ae;stroke-width:1.2",
    "box lit": "fill:#fdecea;stroke:#c0392b;stroke-width:2.2",
    "boxlabel": "font:11.5px sans-serif;fill:#1d232b",
    "arrow": "stroke:#9aa4ae;fill:#9aa4ae;stroke-width:1.6",
    "arrow hot": "stroke:#c0392b;fill:#c0392b;stroke-width:3.4",
    "hotlabel": "font:bold 11.5px sans-serif;fill:#c0392b",
    "nolabel": "font:11.5px sans-serif;fill:#5b6570",
}
#: event fields that hold addresses, handles or page-frame numbers (shown in hex, as the kernel prints them)
HEX_FIELDS = {"vaddr", "handle", "kpfn", "pfn", "old_pfn", "new_pfn", "value", "fill", "zspage", "address",
              "old_handle", "new_handle"}


def chain_html(name: str, title: str, link: str, repointed: int) -> str:
    """The chain as the report draws it, with every style inline (an SVG that needs no CSS)."""
    svg = chain_svg(name, title, link, repointed)
    svg = re.sub(r'class="([^"]+)"', lambda m: f'class="{m.group(1)}" style="{_CHAIN_STYLE.get(m.group(1), "")}"'
                 if m.group(1) in _CHAIN_STYLE else m.group(0), svg)
    return (f'<div style="margin:6px 0"><div style="font:600 13px sans-serif">{title}</div>'
            f'<div style="font:12px sans-serif;color:#5b6570">{link}</div>{svg}</div>')


def shared_count(name: str, counts: Counter) -> int:
    """How many times a mechanism repointed its link in a run, from its events' counts (as the
    report counts them): KSM merges, everyone else's ``dedup.share``."""
    if name == "ksm":
        return counts.get("ksm.merge", 0) + counts.get("ksm.zero_page_merge", 0)
    return counts.get("dedup.share", 0)


def event_tables(events, kinds=None) -> dict:
    """``{kind: DataFrame}``, one table per event kind with only that kind's fields: integer
    columns as integers, address-like fields (``HEX_FIELDS``) as hex strings."""
    import pandas as pd
    by: dict[str, list[dict]] = {}
    for e in events:
        if kinds is None or e.kind in kinds:
            d = e.to_dict()
            d.pop("kind", None)
            by.setdefault(e.kind, []).append(d)
    out = {}
    for kind in (kinds or by):
        rows = by.get(kind)
        if not rows:
            continue
        df = pd.DataFrame(rows)
        for c in df.columns:
            vals = df[c]
            if vals.map(lambda v: isinstance(v, bool)).all():
                continue
            if vals.map(lambda v: isinstance(v, int)).all():
                df[c] = vals.map(hex) if c in HEX_FIELDS else vals.astype("int64")
        out[kind] = df
    return out


def savings_figure(df, title: str = "Bytes saved, metadata spent and net, per mechanism"):
    """A titled bar chart of ``saved_bytes``, ``metadata_bytes`` and ``net_saved_bytes`` (KiB) per
    mechanism, in the report's colours (``df`` as :func:`engine.mechanisms.compare` returns)."""
    from .figures import _setup
    _setup()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = list(df.index)
    x = range(len(names))
    ax.bar([i - 0.27 for i in x], df["saved_bytes"] / 1024, width=0.27, label="saved", color="#2b7a3d")
    ax.bar(list(x), df["metadata_bytes"] / 1024, width=0.27, label="metadata cost", color="#b9462e")
    ax.bar([i + 0.27 for i in x], df["net_saved_bytes"] / 1024, width=0.27, label="net", color="#2f5f9e")
    ax.axhline(0, color="#555", linewidth=0.6)
    ax.set_xticks(list(x), names, rotation=15)
    ax.set_ylabel("KiB")
    ax.legend(frameon=False, ncols=3)
    ax.set_title(title)
    return fig


def process_table(manifest):
    """The processes of a page set as they are in the set: pages per pid counted from the
    manifest's pages (a thinned capture keeps fewer than the process had), beside the count
    the capture saw."""
    import pandas as pd
    n = Counter(int(p) for p in manifest.pid)
    return pd.DataFrame([{"pid": int(p["pid"]), "comm": p.get("comm", ""), "pages in this set": n.get(int(p["pid"]), 0),
                          "pages when captured": int(p["pages"]) if "pages" in p else None}
                         for p in manifest.processes]).astype({"pid": "int64", "pages in this set": "int64"})


__all__ = ["chain_html", "shared_count", "event_tables", "savings_figure", "process_table", "MECH_COLOURS", "colour"]


def to_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (for ``IPython.display.Image``), closing it."""
    import io

    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
