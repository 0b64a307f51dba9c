#!/usr/bin/env python3
"""Write the notebooks under notebooks/ (without outputs). They stay thin: the logic lives in
the packages; a notebook only calls it and shows the results."""
import os

import nbformat as nbf

HERE = os.path.join(os.path.dirname(__file__), "..", "notebooks")


def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c) for c in cells]
    for i, c in enumerate(n.cells):
        c.id = f"cell-{i:02d}"          # stable ids: regenerating changes only what changed
    return n


WALK = [
    "md:# The mechanisms on a few hand-made pages\n\n"
    "Linux finds a swapped-out page through a chain of links: virtual address -> PTE -> frame or swap entry -> "
    "zram slot -> zsmalloc handle -> object -> zspage. Every deduplication design shares memory by making two "
    "users of identical content meet at one link of that chain. Which link, and how the design decides the "
    "contents are identical, is what separates them, and what the claim elements of US 9,977,598 turn on "
    "(a hash of the compressed page, a compare, and a mapping to the stored page).\n\n"
    "Here every mechanism sees the same four hand-made pages: two identical text pages, a zero page and a "
    "page of distinct bytes. Technical evidence, not legal advice.",
    "from engine.pages import PageSet\n"
    "from engine.mechanisms import Workload, compare, make\n"
    "from engine.events import EventBus, Recorder\n"
    "from reports.notebook import chain_html, event_tables, savings_figure, shared_count, to_png\n"
    "from IPython.display import HTML, Image, Markdown, display\n"
    "text = (b'identical text page ' * 205)[:4096]\n"
    "pages = PageSet.from_pages([text, text, bytes(4096), bytes(range(256)) * 16])\n"
    "print(len(pages), 'pages of 4096 bytes')",
    "md:## Side by side\n\n"
    "One row per mechanism. `saved_bytes` is what sharing saved (compressed bytes for the zram-level designs, "
    "whole pages for KSM), `metadata_bytes` what the design's own structures cost, `net_saved_bytes` the "
    "difference; all in bytes. The work columns count hashes, compares and compressions. `verified_readback` "
    "says every page read back through the chain equal to what was written. On two identical pages of four, "
    "expect one page's worth of sharing at most; the zero page is not shared but never stored at all "
    "(zram's same-filled path).",
    "df = compare(Workload(pages))\n"
    "df[['link', 'when', 'comp_algorithm', 'saved_bytes', 'metadata_bytes', 'net_saved_bytes', 'pages_merged', "
    "'pages_hashed', 'compares', 'compressions', 'verified_readback']]",
    "display(Image(to_png(savings_figure(df, 'Four hand-made pages: saved, metadata and net per mechanism'))))",
    "md:## The events: what each mechanism hashed, compared and repointed\n\n"
    "Each mechanism emits typed events as it works. One table per event kind: `dedup.hash` is the hash taken "
    "(over which bytes, with which function), `dedup.compare` how identity was established, `dedup.share` "
    "which link was repointed. Handles and addresses are in hex, as the kernel prints them. These are the "
    "events the claim chart cites as evidence for elements 1[b] to 1[e].",
    "for name in ['zram_dedup', 'zram_merge', 'patent_claim1']:\n"
    "    rec = Recorder(); bus = EventBus(); bus.subscribe(rec)\n"
    "    m = make(name).run(Workload(pages), bus=bus)\n"
    "    display(Markdown(f'### {name}: shares at `{m.link}`'))\n"
    "    for kind, table in event_tables(rec.events, ['dedup.hash', 'dedup.compare', 'dedup.share']).items():\n"
    "        display(Markdown(f'`{kind}` ({len(table)} events)'))\n"
    "        display(table.head(8))",
    "md:KSM works differently: a background scan over resident pages, a checksum only to skip pages that are "
    "still changing, content-ordered trees searched by `memcmp`, and PTEs repointed at one write-protected KSM "
    "page. No hash identifies a page, and nothing is compressed before the compare:",
    "rec = Recorder(); bus = EventBus(); bus.subscribe(rec)\n"
    "k = make('ksm').run(Workload(pages), bus=bus)\n"
    "for kind, table in event_tables(rec.events, ['ksm.checksum', 'ksm.unstable_insert', 'ksm.merge']).items():\n"
    "    display(Markdown(f'`{kind}` ({len(table)} events)'))\n"
    "    display(table)",
    "md:## Where each one shares\n\n"
    "The chain once per mechanism, the link it repoints in red, with the number of times it did so on these "
    "four pages (counted from its events).",
    "for name in ['upstream_zram', 'ksm', 'zram_dedup', 'zsmalloc_fold', 'patent_claim1']:\n"
    "    rec = Recorder(keep=False); bus = EventBus(); bus.subscribe(rec)\n"
    "    m = make(name).run(Workload(pages), bus=bus)\n"
    "    display(HTML(chain_html(name, m.title, m.link, shared_count(name, rec.counts))))",
]

CHART = [
    "md:# US 9,977,598: claims, elements and the claim chart\n\n"
    "The patent's claims as data: each claim split into the elements a reviewer checks one by one, the chart "
    "that sets every element against every later design, and the dated references against the priority date. "
    "Technical evidence for review, not legal advice: statuses say what a design does against the words of an "
    "element, never what follows from it in law.",
    "from claims.store import load_bundle\n"
    "from claims.chart import chart_frame, check_chart, prior_art_flags\n"
    "from claims.graph import dependency_graph, dependency_matrix, render_tree\n"
    "import pandas as pd\n"
    "b = load_bundle('US9977598', overlay=False)\n"
    "print(b.patent.display_number, '-', b.patent.title.value, '- priority', b.patent.priority_date)",
    "md:## Claim elements\n\nEach element is a span of the claim's own text (start and end are character "
    "offsets into it), so a pinpoint always points at the patent's words.",
    "pd.DataFrame([{'id': e.id, 'role': e.role, 'start': e.start, 'end': e.end, 'text': e.text}\n"
    "              for c in b.claims if c.loaded for e in c.elements])",
    "md:## The chart: status of every element against every mechanism\n\n"
    "present, partial, absent or undetermined (a construction question left to the reviewer). The report "
    "gives each cell's reasoning and evidence; `pagemerge report --xlsx` writes them for a reviewer's comments.",
    "chart_frame(b)",
    "md:The strict check: every element has a row for every mechanism, and every evidence event is one the "
    "engine emits (an empty list means the chart is complete):",
    "check_chart(b)",
    "md:## Dependency graph\n\nA dependent claim adds its limitation to its parent's; its status can be no "
    "better than its parent's.",
    "g = dependency_graph(b.claims)\nprint(render_tree(g))",
    "from IPython.display import HTML\n"
    "from reports.numbers import matrix_html\n"
    "HTML(matrix_html(dependency_matrix([c for c in b.claims if c.loaded])))  # row depends on column",
    "md:## References against the priority date (a flag for review, not a conclusion)",
    "pd.DataFrame(prior_art_flags(b))[['id', 'date', 'date_kind', 'flag']]",
]

REAL = [
    "md:# Real memory: the embedded capture\n\nThe embedded page set is the private anonymous memory of known "
    "programs (three Python interpreters and a Perl interpreter started with an empty environment), captured "
    "live and thinned to a few hundred pages. `pagemerge capture --pid PID` or `--core FILE` makes the same "
    "kind of set from your own processes. Real memory matters because duplicates, zero pages and "
    "compressibility are what decide whether any design saves more than its metadata costs.",
    "from engine.pages import default_pages_path\n"
    "from engine.pages import PageSet\n"
    "from engine.workloads.manifest import Manifest, manifest_path\n"
    "from engine.workloads.analyze import analyze, format_profile\n"
    "from engine.mechanisms import Workload, compare\n"
    "from engine.events import EventBus\n"
    "from engine.mechanisms import make\n"
    "from reports.notebook import process_table, savings_figure, to_png\n"
    "from reports.plots import SeriesRecorder, convergence_figure, pool_growth_figure\n"
    "from reports.sweep import run_sweep, sweep_figure\n"
    "from IPython.display import Image, display\n"
    "path = default_pages_path()\n"
    "pages = PageSet.open(path)\n"
    "man = Manifest.load(manifest_path(path), len(pages))\n"
    "print(len(pages), 'pages')\n"
    "process_table(man)",
    "md:## Content profile\n\nZero and same-filled pages are never stored by zram (the fill value sits in the "
    "slot); duplicate groups are what a deduplicating design can share; the compressed sizes set what sharing "
    "one compressed page saves.",
    "profile = analyze(pages, progress=False)\nprint(format_profile(profile))",
    "md:## Every mechanism on this memory, placed at its real processes and addresses\n\n"
    "Bytes throughout; `mem_used_total` is the zsmalloc pool after the run (upstream zram's is the baseline). "
    "A negative `net_saved_bytes` means the design's metadata cost more than its sharing saved on this memory.",
    "wl = Workload(pages, man)\n"
    "df = compare(wl)\n"
    "df[['comp_algorithm', 'saved_bytes', 'metadata_bytes', 'net_saved_bytes', 'pages_merged', 'mem_used_total', "
    "'verified_readback']]",
    "display(Image(to_png(savings_figure(df, 'Real memory: saved, metadata and net per mechanism ('\n"
    "                                    + ', '.join(sorted(set(df['comp_algorithm']))) + ')'))))",
    "md:## Over time: KSM's scans and the pool during swap-out\n\n"
    "KSM needs two full scans before it merges anything (the first only records each page's checksum, to skip "
    "pages that change); the counters then settle. The pool grows page by page as pages are swapped out; a "
    "design that shares inline grows it less.",
    "recs = {}\n"
    "for name in ['upstream_zram', 'zram_dedup', 'patent_claim1', 'ksm']:\n"
    "    m = make(name); rec = SeriesRecorder(m); bus = EventBus(); bus.subscribe(rec)\n"
    "    m.run(wl, bus=bus); recs[name] = rec\n"
    "display(Image(convergence_figure(recs['ksm'].scans, 'png')))\n"
    "display(Image(pool_growth_figure({n: r.pool for n, r in recs.items() if r.pool}, 'png')))",
    "md:## One parameter varied: the share of pages swapped out\n\n"
    "`pagemerge sweep swap-fraction=0.25,0.5,1` does the same from the command line (CSV, SVG and PNG).",
    "sweep = run_sweep(wl, 'swap-fraction', [0.25, 0.5, 1.0], ['upstream_zram', 'zram_dedup', 'zram_merge', 'ksm', "
    "'patent_claim1'])\n"
    "display(Image(sweep_figure(sweep, 'png')))\n"
    "sweep.pivot(index='value', columns='mechanism', values='net_saved_bytes')",
]

if __name__ == "__main__":
    for name, cells in (("01-mechanisms-walkthrough.ipynb", WALK), ("02-claim-chart-US9977598.ipynb", CHART),
                        ("03-real-memory-analysis.ipynb", REAL)):
        nbf.write(nb(cells), os.path.join(HERE, name))
        print("wrote", name)
