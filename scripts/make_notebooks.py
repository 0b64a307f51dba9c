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
    return n


WALK = [
    "md:# The mechanisms on a few hand-made pages\n\nEvery mechanism runs on the same indirection chain "
    "(virtual address -> PTE -> frame or swap entry -> zram slot -> handle -> object -> zspage). "
    "Here they see four hand-made pages: two identical text pages, a zero page and a unique page.",
    "from engine.pages import PageSet\n"
    "from engine.mechanisms import Workload, compare, make\n"
    "from engine.events import EventBus, Recorder\n"
    "from reports.figures import chain_svg\n"
    "from IPython.display import SVG, display\n"
    "text = (b'identical text page ' * 205)[:4096]\n"
    "pages = PageSet.from_pages([text, text, bytes(4096), bytes(range(256)) * 16])\n"
    "len(pages)",
    "md:## Side by side\n\nOne row per mechanism: bytes saved, the metadata it costs, the work done, and a "
    "read-back of every page through the chain. `comp_algorithm` is the zram backend each store compressed "
    "with (the kernel's default, lzo-rle, unless a mechanism pins another).",
    "df = compare(Workload(pages))\n"
    "df[['link', 'when', 'comp_algorithm', 'saved_bytes', 'metadata_bytes', 'pages_merged', 'pages_hashed', "
    "'compares', 'compressions', 'verified_readback']]",
    "md:## The events: what each mechanism hashed, compared and repointed",
    "for name in ['zram_dedup', 'zram_merge', 'patent_claim1']:\n"
    "    rec = Recorder(); bus = EventBus(); bus.subscribe(rec)\n"
    "    m = make(name).run(Workload(pages), bus=bus)\n"
    "    ev = rec.frame(['dedup.hash', 'dedup.compare', 'dedup.share'])\n"
    "    print(name, '-', m.link)\n"
    "    display(ev.drop(columns=[c for c in ('value',) if c in ev]).head(8))",
    "md:KSM works on resident pages in a background scan, and repoints PTEs:",
    "rec = Recorder(); bus = EventBus(); bus.subscribe(rec)\n"
    "k = make('ksm').run(Workload(pages), bus=bus)\n"
    "rec.frame(['ksm.checksum', 'ksm.unstable_insert', 'ksm.merge'])",
    "md:## Where each one shares",
    "for name in ['ksm', 'zram_dedup', 'zsmalloc_fold', 'patent_claim1']:\n"
    "    m = make(name)\n"
    "    display(SVG(chain_svg(name, m.title, m.link, 0)))",
]

CHART = [
    "md:# US 9,977,598: claims, elements and the claim chart\n\nTechnical evidence for review, not legal advice.",
    "from claims.store import load_bundle\n"
    "from claims.chart import chart_frame, check_chart, prior_art_flags\n"
    "from claims.graph import dependency_graph, dependency_matrix, render_tree\n"
    "import pandas as pd\n"
    "b = load_bundle('US9977598', overlay=False)\n"
    "print(b.patent.display_number, '-', b.patent.title.value, '- priority', b.patent.priority_date)",
    "md:## Claim elements",
    "pd.DataFrame([{'id': e.id, 'role': e.role, 'start': e.start, 'end': e.end, 'text': e.text}\n"
    "              for c in b.claims if c.loaded for e in c.elements])",
    "md:## The chart: status of every element against every mechanism",
    "chart_frame(b)",
    "md:Every element has a row for every mechanism, every evidence event is one the engine emits:",
    "check_chart(b)",
    "md:## Dependency graph",
    "g = dependency_graph(b.claims)\nprint(render_tree(g))",
    "dependency_matrix([c for c in b.claims if c.loaded])",
    "md:## References against the priority date (a flag for review, not a conclusion)",
    "pd.DataFrame(prior_art_flags(b))[['id', 'date', 'date_kind', 'flag']]",
]

REAL = [
    "md:# Real memory: the embedded capture\n\nThe embedded page set is the private anonymous memory of known programs "
    "(three Python interpreters and a Perl interpreter started with an empty environment), captured live and thinned. "
    "`pagemerge capture --pid PID` or `--core FILE` makes the same kind of set from your own processes.",
    "from engine.pages import default_pages_path\n"
    "from engine.pages import PageSet\n"
    "from engine.workloads.manifest import Manifest, manifest_path\n"
    "from engine.workloads.analyze import analyze, format_profile\n"
    "from engine.mechanisms import Workload, compare\n"
    "import pandas as pd\n"
    "path = default_pages_path()\n"
    "pages = PageSet.open(path)\n"
    "man = Manifest.load(manifest_path(path), len(pages))\n"
    "pd.DataFrame(man.processes)[['pid', 'comm', 'pages']]",
    "md:## Content profile",
    "profile = analyze(pages, progress=False)\nprint(format_profile(profile))",
    "md:## Every mechanism on this memory, placed at its real processes and addresses",
    "df = compare(Workload(pages, man))\n"
    "df[['comp_algorithm', 'saved_bytes', 'metadata_bytes', 'net_saved_bytes', 'pages_merged', 'mem_used_total', "
    "'verified_readback']]",
    "ax = (df[['saved_bytes', 'metadata_bytes', 'net_saved_bytes']] / 1024).plot.bar(figsize=(8, 3), rot=15)\n"
    "ax.set_ylabel('KiB')\n"
    "ax.set_title('compressor: ' + ', '.join(sorted(set(df['comp_algorithm']))));",
]

if __name__ == "__main__":
    for name, cells in (("01-mechanisms-walkthrough.ipynb", WALK), ("02-claim-chart-US9977598.ipynb", CHART),
                        ("03-real-memory-analysis.ipynb", REAL)):
        nbf.write(nb(cells), os.path.join(HERE, name))
        print("wrote", name)
