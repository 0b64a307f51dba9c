"""``pagemerge simulate|kernel|compare zram``: one zram scenario on the model, the live zram0, or both.

``--json`` prints ``{"mm_stat": {...}, "io_stat": {...}, "comp_algorithm": "lzo-rle"}`` with the
kernel's field names and the compressor used; ``compare`` exits 1 on any difference.
"""
from __future__ import annotations

import argparse

from engine.compress import DEFAULT_COMPRESSOR
from engine.errors import InputError
from engine.zram import MAX_IO_PAGES
from engine.kernel.safety import require_root
from engine.pages import PageSet, parse_bytes, parse_list

from .common import PAGES_HELP, differences_json, int_range, print_side_by_side, print_stats


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pages", metavar="PAGES", help=PAGES_HELP)
    p.add_argument("--algo", default=DEFAULT_COMPRESSOR,
                   help="compressor, exact model of a zram backend: kernel-lzo-rle (lzo-rle, the kernel's "
                        "default), kernel-lzo (lzo), kernel-lz4 (lz4); the kernel's names are accepted too")
    p.add_argument("--discard", metavar="LIST", help="slots to discard after storing, e.g. 0-99,200,300-399:3")
    p.add_argument("--overwrite", metavar="LIST", help="slots to overwrite after discarding")
    p.add_argument("--overwrite-with", metavar="FILE",
                   help="page-set file whose page k (cycling) overwrites the k-th listed slot")
    p.add_argument("--compact", action="store_true", help="compact the pool at the end (echo 1 > compact)")
    p.add_argument("--mem-limit", metavar="BYTES", default="0",
                   help="zram mem_limit, e.g. 64M (0 = none; at most 2^50)")
    p.add_argument("--io-pages", metavar="N", type=int_range("--io-pages", 1, MAX_IO_PAGES), default=1,
                   help=f"pages per write and discard request, 1..{MAX_IO_PAGES} (default 1); a page refused by "
                        "--mem-limit ends its request and the rest of that request is not stored")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def scenario(a):
    from engine.scenario import ZramScenario
    mem_limit = parse_bytes(a.mem_limit)          # numbers first: nothing is opened for a bad one
    pages = PageSet.open(a.pages)
    if a.overwrite_with and not a.overwrite:
        raise InputError("--overwrite-with: needs --overwrite LIST (the slots to overwrite)")
    ow = PageSet.open(a.overwrite_with) if a.overwrite_with else None
    n = len(pages)
    return ZramScenario(
        pages=pages, algo=a.algo,
        discard=parse_list(a.discard, "--discard", n) if a.discard else [],
        overwrite=parse_list(a.overwrite, "--overwrite", n) if a.overwrite else [],
        overwrite_with=ow, compact=a.compact, mem_limit=mem_limit, io_pages=a.io_pages)


def _counters(st) -> dict:
    return {"mm_stat": st.mm_stat, "io_stat": st.io_stat}


def _what(sc) -> str:
    io = f", {sc.io_pages}-page requests" if sc.io_pages > 1 else ""
    return f"{sc.comp_algorithm}{io}"


def cmd_simulate(a) -> int:
    from engine.compress import get_compressor
    sc = scenario(a)
    get_compressor(sc.algo)   # refuse unmodelled algorithms before doing any work
    st = sc.run_model(progress=None)
    print_stats(st.to_dict() if a.json else _counters(st), a.json,
                f"zram model ({_what(sc)}) on {a.pages}: {len(sc.pages)} pages")
    return 0


def cmd_kernel(a) -> int:
    require_root(f"{a.cmd} {a.what}")     # before any work: the live kernel is root's
    sc = scenario(a)
    st = sc.run_kernel(progress=None)
    print_stats(st.to_dict() if a.json else _counters(st), a.json,
                f"live kernel zram0 ({_what(sc)}) on {a.pages}: {len(sc.pages)} pages")
    return 0


def cmd_compare(a) -> int:
    require_root(f"{a.cmd} {a.what}")     # before any work: the live kernel is root's
    from engine.compress import get_compressor
    from engine.scenario import diff_stats
    sc = scenario(a)
    get_compressor(sc.algo)
    model = sc.run_model(progress=None)
    kernel = sc.run_kernel(progress=None)
    diffs = diff_stats(model, kernel)
    if a.json:
        print(differences_json(model.to_dict(), kernel.to_dict(), diffs))
    else:
        print_side_by_side(f"zram on {a.pages}: {len(sc.pages)} pages, {_what(sc)}", model.to_dict(),
                           kernel.to_dict(), ("mm_stat", "io_stat"), len(diffs), 28)
    return 1 if diffs else 0


def add_parsers(families: dict) -> None:
    for verb, func, helptext in (("simulate", cmd_simulate, "the zram model: mm_stat and io_stat"),
                                 ("kernel", cmd_kernel, "the live zram0: mm_stat and io_stat (root)"),
                                 ("compare", cmd_compare, "zram model vs live zram0; exit 1 on any difference")):
        z = families[verb].add_parser("zram", help=helptext, description=helptext)
        _args(z)
        z.set_defaults(func=func)
