"""Plots over time, recorded from a run's own events: KSM's convergence over full scans
(pages_shared / pages_sharing after each scan) and the zsmalloc pool's growth while pages are
swapped out, per mechanism. Drawn as SVG for the report and PNG for notebooks, in the report's
colours, each with a title.
"""
from __future__ import annotations

import io

from engine.events import Event
from engine.pages import PAGE_SIZE

#: one colour per mechanism, from the report's palette
MECH_COLOURS = {"upstream_zram": "#8a8f96", "zram_dedup": "#2f5f9e", "zram_merge": "#b07800",
                "zsmalloc_fold": "#6d5a9c", "ksm": "#2b7a3d", "patent_claim1": "#c0392b"}
OTHER_COLOURS = ("#1d232b", "#5a5fb0", "#b9462e", "#2b7a3d", "#b07800")


def colour(name: str, i: int = 0) -> str:
    return MECH_COLOURS.get(name, OTHER_COLOURS[i % len(OTHER_COLOURS)])


class SeriesRecorder:
    """An event listener for one mechanism's run.

    ``pool``: ``(pages stored so far, zsmalloc pool bytes)`` after each ``zram.slot_written``
    (the pool follows ``zsmalloc.zspage_alloc`` / ``zspage_free``: the pages of the zspages the
    pool holds, which is what ``mem_used_total`` counts).
    ``scans``: KSM's counters after each full scan (``ksm.full_scan``), read from the mechanism's
    ksmd at the moment the scan completes."""

    def __init__(self, mech=None):
        self.mech = mech
        self.stored = 0
        self.pool_pages = 0
        self.pool: list[tuple[int, int]] = []
        self.scans: list[dict] = []

    def __call__(self, ev: Event) -> None:
        k = ev.kind
        if k == "zsmalloc.zspage_alloc":
            self.pool_pages += ev.pages
        elif k == "zsmalloc.zspage_free":
            self.pool_pages -= ev.pages
        elif k == "zram.slot_written":
            self.stored += 1
            self.pool.append((self.stored, self.pool_pages * PAGE_SIZE))
        elif k == "ksm.full_scan":
            ksmd = getattr(self.mech, "ksmd", None)
            c = ksmd.counters() if ksmd is not None else {}
            self.scans.append({"full_scans": ev.seqnr, "pages_shared": c.get("pages_shared"),
                               "pages_sharing": c.get("pages_sharing"), "pages_unshared": c.get("pages_unshared"),
                               "pages_volatile": c.get("pages_volatile")})


def _setup():
    from .figures import _setup as setup
    setup()


def _out(fig, fmt: str):
    import matplotlib.pyplot as plt
    if fmt == "svg":
        from .figures import _svg
        return _svg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def convergence_figure(scans: list[dict], fmt: str = "svg"):
    """pages_shared and pages_sharing after each full scan of KSM."""
    _setup()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 2.8))
    x = [s["full_scans"] for s in scans]
    ax.plot(x, [s["pages_shared"] for s in scans], "o-", color="#2b7a3d", label="pages_shared (KSM pages)")
    ax.plot(x, [s["pages_sharing"] for s in scans], "s--", color="#2f5f9e", label="pages_sharing (PTEs sharing them)")
    ax.set_xlabel("full scans completed")
    ax.set_ylabel("pages")
    ax.set_xticks(x)
    ax.legend(frameon=False)
    ax.set_title("KSM convergence: counters after each full scan")
    return _out(fig, fmt)


def pool_growth_figure(series: dict[str, list[tuple[int, int]]], fmt: str = "svg"):
    """The zsmalloc pool (bytes) against the pages stored so far, one line per mechanism."""
    _setup()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, (name, pts) in enumerate(series.items()):
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] / 1024 for p in pts], color=colour(name, i), label=name, linewidth=1.4,
                linestyle="--" if name == "upstream_zram" else "-")
    ax.set_xlabel("pages stored in zram during swap-out")
    ax.set_ylabel("zsmalloc pool, KiB")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Pool growth during swap-out, per mechanism")
    return _out(fig, fmt)


def plots_html(recorders: dict[str, SeriesRecorder]) -> str:
    """The two plots as figures for the report (empty where nothing was recorded)."""
    out = []
    scans = next((r.scans for r in recorders.values() if r.scans), None)
    if scans:
        out.append(f'<div class="figure" id="ksm-convergence">{convergence_figure(scans)}</div>')
    pools = {n: r.pool for n, r in recorders.items() if r.pool}
    if pools:
        out.append(f'<div class="figure" id="pool-growth">{pool_growth_figure(pools)}</div>')
    return "".join(out)
