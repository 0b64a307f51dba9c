"""``pagemerge``: the command line.

Contracts other tools rely on (keep them stable):

* ``pagemerge simulate zram PAGES [--algo A] [--discard LIST] [--overwrite LIST
  --overwrite-with FILE] [--compact] [--mem-limit BYTES] [--json]`` prints
  ``{"mm_stat": {...}, "io_stat": {...}}`` (the kernel's field names) or a table.
* ``pagemerge kernel zram ...``: the same from the live zram0 (root only).
* ``pagemerge compare zram ...``: both side by side; exit 1 on any difference.
* ``pagemerge simulate ksm PAGES [--use-zero-pages] [--max-page-sharing N] [--smart-scan 0|1]
  [--cow LIST] [--manifest FILE | --no-manifest] [--json]`` prints ``{"ksm": {sysfs counters},
  "ksm_stat": {...}, "processes": [...], "full_scans_at": [...]}`` after convergence;
  ``kernel ksm`` and ``compare ksm`` as for zram.

Every user-facing error is one line ``pagemerge: <file or option>: <problem>`` and exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import PagemergeError, InputError
from .pages import PageSet, parse_list

_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(s: str) -> int:
    """Bytes like the kernel's memparse: ``1048576``, ``64K``, ``100M``, ``2G``."""
    t = s.strip().lower()
    mult = 1
    if t and t[-1] in _SUFFIX:
        mult = _SUFFIX[t[-1]]
        t = t[:-1]
    try:
        v = int(t) * mult
    except ValueError:
        raise InputError(f"--mem-limit: cannot parse {s!r} as bytes (e.g. 1048576, 64K, 100M)") from None
    if v < 0:
        raise InputError(f"--mem-limit: must not be negative ({s!r})")
    return v


def default_pages_path() -> str:
    from importlib.resources import files
    return str(files("engine") / "data" / "default.pages")


# ---- zram -------------------------------------------------------------------------------------
def _zram_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pages", metavar="PAGES", help="page-set file (raw pages, a multiple of 4096 bytes)")
    p.add_argument("--algo", default="kernel-lz4",
                   help="compressor: kernel-lz4 (the kernel's lz4, exact); lzo/lzo-rle are refused by the model")
    p.add_argument("--discard", metavar="LIST", help="slots to discard after storing, e.g. 0-99,200,300-399:3")
    p.add_argument("--overwrite", metavar="LIST", help="slots to overwrite after discarding")
    p.add_argument("--overwrite-with", metavar="FILE",
                   help="page-set file whose page k (cycling) overwrites the k-th listed slot")
    p.add_argument("--compact", action="store_true", help="compact the pool at the end (echo 1 > compact)")
    p.add_argument("--mem-limit", metavar="BYTES", default="0", help="zram mem_limit (0 = none)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _zram_scenario(a):
    from .scenario import ZramScenario
    pages = PageSet.open(a.pages)
    ow = PageSet.open(a.overwrite_with) if a.overwrite_with else None
    if ow is not None and not a.overwrite:
        raise InputError("--overwrite-with: needs --overwrite LIST (the slots to overwrite)")
    return ZramScenario(
        pages=pages, algo=a.algo,
        discard=parse_list(a.discard, "--discard") if a.discard else [],
        overwrite=parse_list(a.overwrite, "--overwrite") if a.overwrite else [],
        overwrite_with=ow, compact=a.compact, mem_limit=parse_bytes(a.mem_limit))


def _print_stats(d: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(d, indent=2))
        return
    print(title)
    for group, fields in d.items():
        print(f"  {group}")
        for k, v in fields.items():
            print(f"    {k:<18} {v:>14}")


def cmd_simulate_zram(a) -> int:
    sc = _zram_scenario(a)
    from .compress import get_compressor
    get_compressor(sc.algo)   # refuse unmodelled algorithms before doing any work
    st = sc.run_model(progress=None)
    _print_stats(st.to_dict(), a.json, f"zram model ({sc.algo}) on {a.pages}: {len(sc.pages)} pages")
    return 0


def cmd_kernel_zram(a) -> int:
    sc = _zram_scenario(a)
    st = sc.run_kernel(progress=None)
    _print_stats(st.to_dict(), a.json, f"live kernel zram0 ({sc.algo}) on {a.pages}: {len(sc.pages)} pages")
    return 0


def _print_side_by_side(title: str, model: dict, kernel: dict, groups, n_diffs: int, width: int,
                        note=lambda group, key: "   <-- differs") -> None:
    print(title)
    print(f"  {'field':<{width}} {'model':>14} {'kernel':>14}")
    for group in groups:
        for k, m in model[group].items():
            kv = kernel[group][k]
            print(f"  {group + '.' + k:<{width}} {m:>14} {kv:>14}{'' if m == kv else note(group, k)}")
    print("  all fields equal" if not n_diffs else f"  {n_diffs} field(s) differ")


def cmd_compare_zram(a) -> int:
    from .scenario import diff_stats
    from .compress import get_compressor
    sc = _zram_scenario(a)
    get_compressor(sc.algo)
    model = sc.run_model(progress=None)
    kernel = sc.run_kernel(progress=None)
    diffs = diff_stats(model, kernel)
    if a.json:
        print(json.dumps({"model": model.to_dict(), "kernel": kernel.to_dict(),
                          "differences": [{"group": g, "field": f, "model": m, "kernel": k}
                                          for g, f, m, k in diffs]}, indent=2))
    else:
        _print_side_by_side(f"zram on {a.pages}: {len(sc.pages)} pages, {sc.algo}", model.to_dict(),
                            kernel.to_dict(), ("mm_stat", "io_stat"), len(diffs), 28)
    return 1 if diffs else 0


# ---- ksm --------------------------------------------------------------------------------------
def _ksm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pages", metavar="PAGES", help="page-set file (raw pages, a multiple of 4096 bytes)")
    _manifest_args(p)
    p.add_argument("--use-zero-pages", action="store_true", help="use_zero_pages=1")
    p.add_argument("--max-page-sharing", type=int, default=256, metavar="N")
    p.add_argument("--smart-scan", type=int, choices=(0, 1), default=0)
    p.add_argument("--cow", metavar="LIST", help="after convergence, write to these pages (copy-on-write), rescan")
    p.add_argument("--trace", metavar="FILE",
                   help="writes over time: lines 'after_scan,page,offset,hexbytes' (# comments allowed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _ksm_scenario(a):
    from .scenario import KsmScenario
    pages = PageSet.open(a.pages)
    return KsmScenario(pages=pages, manifest=_load_manifest(a, pages), trace=read_trace(a.trace) if a.trace else [], use_zero_pages=a.use_zero_pages,
                       max_page_sharing=a.max_page_sharing, smart_scan=a.smart_scan,
                       cow=parse_list(a.cow, "--cow") if a.cow else [])


def read_trace(path: str) -> list[tuple[int, int, int, bytes]]:
    """A write trace: one write per line, ``after_scan,page,offset,hexbytes``."""
    from pathlib import Path
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read trace ({e.strerror})") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            scan, page, off, data = (x.strip() for x in line.split(","))
            out.append((int(scan), int(page), int(off), bytes.fromhex(data)))
        except ValueError:
            raise InputError(f"{path}: line {n}: expected 'after_scan,page,offset,hexbytes', got {line!r}") from None
    return out


def _print_ksm(d: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(d, indent=2))
        return
    print(title)
    for group in ("ksm", "ksm_stat"):
        print(f"  {group}")
        for k, v in d[group].items():
            print(f"    {k:<22} {v:>14}")
    if len(d["processes"]) > 1:
        print("  per process (pid: rmap_items / merging / zero / profit)")
        for p in d["processes"]:
            print(f"    {p['pid']:>8}: {p['ksm_rmap_items']} / {p['ksm_merging_pages']} / "
                  f"{p['ksm_zero_pages']} / {p['ksm_process_profit']}")
    print(f"  converged after full scans: {', '.join(map(str, d['full_scans_at']))}")


def cmd_simulate_ksm(a) -> int:
    sc = _ksm_scenario(a)
    _print_ksm(sc.run_model(), a.json, f"ksm model on {a.pages}: {len(sc.pages)} pages")
    return 0


def cmd_kernel_ksm(a) -> int:
    sc = _ksm_scenario(a)
    _print_ksm(sc.run_kernel(), a.json, f"live ksmd on {a.pages}: {len(sc.pages)} pages")
    return 0


def cmd_compare_ksm(a) -> int:
    from .scenario import diff_ksm
    sc = _ksm_scenario(a)
    kernel = sc.run_kernel()
    model = sc.run_model(follow=kernel)
    diffs = diff_ksm(model, kernel, a.smart_scan)
    if a.json:
        print(json.dumps({"model": model, "kernel": kernel,
                          "differences": [{"group": g, "field": f, "model": m, "kernel": k}
                                          for g, f, m, k in diffs]}, indent=2))
    else:
        def note(group, k):
            if a.smart_scan and k in ("pages_unshared", "pages_volatile"):
                return "   (smart_scan: only the sum counts)"
            return "   <-- differs"
        _print_side_by_side(f"ksm on {a.pages}: {len(sc.pages)} pages in {len(model['processes'])} process(es)",
                            model, kernel, ("ksm", "ksm_stat"), len(diffs), 36, note)
    return 1 if diffs else 0


# ---- all mechanisms ---------------------------------------------------------------------------
def _all_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pages", metavar="PAGES", help="page-set file (raw pages, a multiple of 4096 bytes)")
    _manifest_args(p)
    p.add_argument("--mechanisms", metavar="LIST", help="comma-separated names (default: all)")
    p.add_argument("--swap-fraction", type=float, default=1.0, metavar="F",
                   help="share of resident pages swapped out (default 1.0)")
    p.add_argument("--policy", default="lru", choices=("lru", "fifo", "random"), help="swap candidate selection")
    p.add_argument("--seed", type=int, default=0, help="seed of the random policy")
    p.add_argument("--compact", action="store_true", help="compact the zsmalloc pool at the end")
    _variant_args(p)
    p.add_argument("--json", action="store_true")


def _manifest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", metavar="FILE",
                   help="which pages belong to which process and address (default: PAGES.json if present)")
    p.add_argument("--no-manifest", action="store_true", help="ignore PAGES.json: one process, consecutive addresses")


def _variant_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dedup-hash", default="jhash", choices=("jhash", "xxhash32"),
                   help="zram_dedup checksum: jhash as posted, xxhash32 as later ports")
    p.add_argument("--merge-variant", default="posted", choices=("posted", "corrected"))
    p.add_argument("--fold-variant", default="posted", choices=("posted", "corrected"))
    p.add_argument("--patent-identity", default="full", choices=("full", "hash-only"))
    p.add_argument("--predetermined-size", type=int, metavar="BYTES",
                   help="the patent's predetermined size (default: zram's huge threshold)")
    p.add_argument("--use-zero-pages", action="store_true", help="KSM use_zero_pages=1")


def _load_manifest(a, pages):
    from .workloads.manifest import Manifest, manifest_path
    if a.manifest and a.no_manifest:
        raise InputError("--manifest and --no-manifest exclude each other")
    if a.manifest:
        return Manifest.load(a.manifest, len(pages))
    if not a.no_manifest and manifest_path(a.pages).exists():
        return Manifest.load(manifest_path(a.pages), len(pages))
    return None


def mechanism_params(a) -> dict:
    return {"zram_dedup": {"hash": a.dedup_hash}, "zram_merge": {"variant": a.merge_variant},
            "zsmalloc_fold": {"variant": a.fold_variant}, "ksm": {"use_zero_pages": a.use_zero_pages},
            "patent_claim1": {"identity": a.patent_identity, "predetermined_size": a.predetermined_size}}


def cmd_simulate_all(a) -> int:
    from .mechanisms import DEFAULT_ORDER, Workload, make
    if not 0.0 <= a.swap_fraction <= 1.0:
        raise InputError(f"--swap-fraction: {a.swap_fraction} is not between 0 and 1")
    names = [n.strip() for n in a.mechanisms.split(",")] if a.mechanisms else list(DEFAULT_ORDER)
    params = mechanism_params(a)
    mechs = [make(n, **params.get(n, {})) for n in names]
    pages = PageSet.open(a.pages)
    wl = Workload(pages, _load_manifest(a, pages), a.swap_fraction, a.policy, a.seed, a.compact, a.pages)
    out = {"workload": {"pages": a.pages, "n_pages": len(pages), "processes": len({*wl.manifest.pid}) if wl.manifest else 1,
                        "swap_fraction": a.swap_fraction, "policy": a.policy, "seed": a.seed, "compact": a.compact},
           "mechanisms": {}}
    for m in mechs:
        m.run(wl)
        out["mechanisms"][m.name] = m.result()
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{len(pages)} pages from {a.pages}; swap-out {a.swap_fraction:.0%} by {a.policy}")
    print(f"  {'mechanism':<15} {'saved':>12} {'metadata':>10} {'net':>12} {'merged':>8} {'mem_used':>12}  read-back  variant")
    for name, r in out["mechanisms"].items():
        mu = r.get("mm_stat", {}).get("mem_used_total", "")
        print(f"  {name:<15} {r['saved_bytes']:>12} {r['metadata_bytes']:>10} {r['net_saved_bytes']:>12} "
              f"{r['pages_merged']:>8} {mu:>12}  {'ok' if r['verified_readback'] else 'LOST DATA':<9}  {r['variant']}")
    return 0


def events_markdown(cat) -> str:
    out = ["# Engine events", "",
           "Every event kind the engine emits. The names are stable: claim charts bind evidence to them,",
           "and `pagemerge claims check` rejects any other name. This file is generated by",
           "`pagemerge events --markdown`, and a test keeps it in step with the code.", "",
           "| kind | meaning | fields |", "|---|---|---|"]
    for e in cat:
        out.append(f"| `{e['kind']}` | {e['doc']} | {', '.join(e['fields'])} |")
    return "\n".join(out) + "\n"


def cmd_events(a) -> int:
    """The event catalogue: every kind the engine emits, with its fields and meaning."""
    from .events import event_catalogue
    cat = event_catalogue()
    if a.json:
        print(json.dumps(cat, indent=2))
    elif a.markdown:
        print(events_markdown(cat), end="")
    else:
        for e in cat:
            print(f"{e['kind']:<26} {e['doc']}")
            print(f"{'':<26} fields: {', '.join(e['fields'])}")
    return 0


# ---- real memory as input ----------------------------------------------------------------------
def cmd_capture(a) -> int:
    from .workloads.capture import capture_pids
    from .workloads.core import capture_core
    if bool(a.pid) == bool(a.core):
        raise InputError("capture: give either --pid PID (one or more) or --core FILE")
    if a.core:
        from tqdm.auto import tqdm
        with tqdm(unit="page", desc="core", disable=None, leave=False) as bar:
            man = capture_core(a.core, a.output, anon_only=a.anon_only, progress=bar)
    else:
        man = capture_pids(a.pid, a.output, include_zero_page=a.include_zero_page)
    for n in man.notes:
        print(f"note: {n}", file=sys.stderr)
    procs = ", ".join(f"{p['pid']} ({p.get('comm', '')}: {p.get('pages', 0)} pages)" for p in man.processes)
    print(f"wrote {a.output} and {a.output}.json: {len(man)} pages from {procs}")
    return 0


def cmd_generate(a) -> int:
    from .workloads.synthetic import write_mix
    man = write_mix(a.mix, a.pages, a.output, seed=a.seed)
    print(f"wrote {a.output} and {a.output}.json: {len(man)} pages of mix {a.mix} (seed {a.seed}) "
          f"in {len(man.processes)} process(es)")
    return 0


def cmd_analyze(a) -> int:
    from .workloads.analyze import analyze, format_profile
    from .workloads.manifest import Manifest, manifest_path
    pages = PageSet.open(a.pages)
    if manifest_path(a.pages).exists():
        Manifest.load(manifest_path(a.pages), len(pages))       # a manifest that disagrees is an error
    d = analyze(pages)
    print(json.dumps(d, indent=2) if a.json else format_profile(d))
    return 0


def cmd_report(a) -> int:
    """The main job: the side-by-side comparison report (HTML + chart CSV) on the embedded
    default, a page-set file, or a live capture."""
    from reports.build import ReportInputs, build_report, default_inputs
    from .mechanisms import DEFAULT_ORDER
    names = tuple(n.strip() for n in a.mechanisms.split(",")) if a.mechanisms else DEFAULT_ORDER
    common = dict(patent=a.patent, chart=a.chart, mechanisms=names, kernel=not a.no_kernel,
                  params=mechanism_params(a))
    if a.pid:
        import tempfile
        from .workloads.capture import capture_pids
        tmp = tempfile.mkdtemp(prefix="pagemerge-capture-")
        path = os.path.join(tmp, "capture.pages")
        capture_pids(a.pid, path)
        a.pages = path
    if a.pages:
        pages = PageSet.open(a.pages)
        inputs = ReportInputs(pages=pages, manifest=_load_manifest(a, pages),
                              source=("live capture of pid " + ", ".join(map(str, a.pid))) if a.pid else a.pages,
                              **common)
    else:
        inputs = default_inputs(**common)
    path = build_report(inputs, out_dir=a.output)
    print(f"report: {path}")
    print(f"chart rows (CSV): {path.with_name(path.name.replace('report-', 'chart-').replace('.html', '.csv'))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pagemerge", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    sim = sub.add_parser("simulate", help="run the engine's model")
    ssub = sim.add_subparsers(dest="what", required=True)
    z = ssub.add_parser("zram", help="the zram model: mm_stat and io_stat")
    _zram_args(z)
    z.set_defaults(func=cmd_simulate_zram)

    ker = sub.add_parser("kernel", help="run the same input through the live kernel (root)")
    ksub = ker.add_subparsers(dest="what", required=True)
    z = ksub.add_parser("zram", help="the live zram0: mm_stat and io_stat")
    _zram_args(z)
    z.set_defaults(func=cmd_kernel_zram)

    cmp_ = sub.add_parser("compare", help="model and live kernel side by side; exit 1 on any difference")
    csub = cmp_.add_subparsers(dest="what", required=True)
    z = csub.add_parser("zram", help="zram model vs live zram0")
    _zram_args(z)
    z.set_defaults(func=cmd_compare_zram)

    for parent, name, func, helptext in ((ssub, "ksm", cmd_simulate_ksm, "the KSM model: sysfs counters and ksm_stat"),
                                         (ksub, "ksm", cmd_kernel_ksm, "the live ksmd: sysfs counters and ksm_stat"),
                                         (csub, "ksm", cmd_compare_ksm, "KSM model vs live ksmd")):
        k = parent.add_parser(name, help=helptext)
        _ksm_args(k)
        k.set_defaults(func=func)

    k = ssub.add_parser("all", help="every mechanism on the same workload: savings, metadata, work, read-back")
    _all_args(k)
    k.set_defaults(func=cmd_simulate_all)

    c = sub.add_parser("capture", help="real memory: live processes (--pid) or an ELF core file (--core)")
    c.add_argument("--pid", type=int, action="append", metavar="PID", help="a process to capture (repeatable)")
    c.add_argument("--core", metavar="FILE", help="an ELF core dump (e.g. from gcore)")
    c.add_argument("-o", "--output", required=True, metavar="OUT.pages", help="page-set file (manifest beside it)")
    c.add_argument("--include-zero-page", action="store_true", help="keep pages that map the shared zero page")
    c.add_argument("--anon-only", action="store_true", help="core files: only segments no file is mapped at")
    c.set_defaults(func=cmd_capture)

    g = sub.add_parser("generate", help="a seeded synthetic page set of a named mix")
    g.add_argument("mix", choices=("android-swap", "identical-vms", "all-unique"))
    g.add_argument("-n", "--pages", type=int, default=4096, help="number of pages (default 4096)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("-o", "--output", required=True, metavar="OUT.pages")
    g.set_defaults(func=cmd_generate)

    an = sub.add_parser("analyze", help="content profile: zero, same-filled, distinct, duplicates, compressibility")
    an.add_argument("pages", metavar="PAGES")
    an.add_argument("--json", action="store_true")
    an.set_defaults(func=cmd_analyze)

    from claims.cli import add_parser as add_claims
    add_claims(sub)

    e = sub.add_parser("events", help="the catalogue of engine event types (evidence names)")
    e.add_argument("--json", action="store_true")
    e.add_argument("--markdown", action="store_true", help="the table in docs/events.md")
    e.set_defaults(func=cmd_events)

    r = sub.add_parser("report", help="the main job: the comparison report (HTML and CSV) on the embedded default")
    r.add_argument("pages", nargs="?", metavar="PAGES", help="a page-set file (default: the embedded real-memory set)")
    r.add_argument("--pid", type=int, action="append", metavar="PID", help="capture these live processes first (root)")
    _manifest_args(r)
    r.add_argument("--mechanisms", metavar="LIST", help="comma-separated names (default: all)")
    r.add_argument("--patent", default="US9977598")
    r.add_argument("--chart", metavar="CHART", help="a chart YAML (default: the bundled chart of --patent)")
    r.add_argument("-o", "--output", metavar="DIR", help="output folder (default: output/report)")
    r.add_argument("--no-kernel", action="store_true", help="skip the live-kernel fidelity section")
    _variant_args(r)
    r.set_defaults(func=cmd_report)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return a.func(a)
    except PagemergeError as e:
        print(f"pagemerge: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        print("pagemerge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
