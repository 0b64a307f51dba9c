"""Real memory as input: ``capture`` (live processes or an ELF core), ``generate`` (seeded
synthetic mixes) and ``analyze`` (the content profile)."""
from __future__ import annotations

import json
import sys

from engine.compress import DEFAULT_COMPRESSOR
from engine.errors import InputError
from engine.pages import PageSet

from .common import PAGES_HELP, int_range, nonneg_int


def cmd_capture(a) -> int:
    from engine.workloads.capture import capture_pids
    from engine.workloads.core import capture_core
    if bool(a.pid) == bool(a.core):
        raise InputError("capture: give either --pid PID (one or more) or --core FILE")
    if a.core:
        from tqdm.auto import tqdm
        with tqdm(unit="page", desc="core", disable=None, leave=False) as bar:
            man = capture_core(a.core, a.output, anon_only=a.anon_only, progress=bar, force=a.force)
    else:
        man = capture_pids(a.pid, a.output, include_zero_page=a.include_zero_page, force=a.force)
    for n in man.notes:
        print(f"note: {n}", file=sys.stderr)
    procs = ", ".join(f"{p['pid']} ({p.get('comm', '')}: {p.get('pages', 0)} pages)" for p in man.processes)
    print(f"wrote {a.output} and {a.output}.json (mode 0600): {len(man)} pages from {procs}")
    return 0


def cmd_generate(a) -> int:
    from engine.workloads.synthetic import write_mix
    man = write_mix(a.mix, a.pages, a.output, seed=a.seed, force=a.force)
    print(f"wrote {a.output} and {a.output}.json: {a.pages} pages of mix {a.mix} (seed {a.seed}) "
          f"in {len(man.processes)} process(es)")
    return 0


def cmd_analyze(a) -> int:
    from engine.workloads.analyze import analyze, format_profile
    from engine.workloads.manifest import resolve_manifest
    pages = PageSet.open(a.pages)
    resolve_manifest(a.pages, len(pages))       # a manifest that disagrees is an error
    if a.workers is not None or a.scheduler is not None:   # one huge dump: chunk ranges on a Dask cluster
        from engine.workloads.distributed import analyze_distributed
        d = analyze_distributed(a.pages, workers=a.workers, scheduler=a.scheduler, algo=a.algo,
                                insecure_scheduler=a.insecure_scheduler)
    else:
        d = analyze(pages, algo=a.algo)
    print(json.dumps(d, indent=2) if a.json else format_profile(d))
    return 0


def add_parsers(sub) -> None:
    c = sub.add_parser("capture", help="real memory: live processes (--pid, root) or an ELF core file (--core)")
    c.add_argument("--pid", type=nonneg_int("--pid", (1 << 22)), action="append", metavar="PID",
                   help="a user process to capture (repeatable; stopped while read, then left as it was)")
    c.add_argument("--core", metavar="FILE", help="an ELF core dump (e.g. from gcore)")
    c.add_argument("-o", "--output", required=True, metavar="OUT.pages",
                   help="page-set file to write (manifest OUT.pages.json beside it; both mode 0600)")
    c.add_argument("--force", action="store_true", help="overwrite OUT.pages and its manifest if they exist")
    c.add_argument("--include-zero-page", action="store_true", help="keep pages that map the shared zero page")
    c.add_argument("--anon-only", action="store_true", help="core files: only segments no file is mapped at")
    c.set_defaults(func=cmd_capture)

    g = sub.add_parser("generate", help="a seeded synthetic page set of a named mix")
    g.add_argument("mix", choices=("android-swap", "identical-vms", "all-unique"), help="the mix")
    g.add_argument("-n", "--pages", type=int_range("--pages", 1, 1 << 24), default=4096,
                   help="number of pages, 1 to 2^24 (64 GiB; default 4096); written a block at a time")
    g.add_argument("--seed", type=nonneg_int("--seed", (1 << 63) - 1), default=0, help="random seed (default 0)")
    g.add_argument("-o", "--output", required=True, metavar="OUT.pages", help="page-set file to write")
    g.add_argument("--force", action="store_true", help="overwrite OUT.pages and its manifest if they exist")
    g.set_defaults(func=cmd_generate)

    an = sub.add_parser("analyze", help="content profile: zero, same-filled, distinct, duplicates, compressibility")
    an.add_argument("pages", metavar="PAGES", help=PAGES_HELP)
    an.add_argument("--algo", default=DEFAULT_COMPRESSOR,
                    help="compressor for the length histogram: kernel-lzo-rle (default, the kernel's), "
                         "kernel-lzo, kernel-lz4 (or the kernel's names)")
    an.add_argument("--json", action="store_true", help="print JSON")
    from .study import cluster_args
    cluster_args(an)
    an.set_defaults(func=cmd_analyze)
