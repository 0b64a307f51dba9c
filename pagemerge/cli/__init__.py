"""``pagemerge``: the command line, a thin layer over the libraries.

One module per verb family: :mod:`.zram` and :mod:`.ksm` (simulate, kernel, compare),
:mod:`.mechanisms` (simulate all, events), :mod:`.memory` (capture, generate, analyze),
:mod:`.report` and :mod:`.claims`. The CLI only parses, calls the library and prints.

Every expected failure is one line on stderr, ``pagemerge: <file or option>: <problem>``, and
exit status 2 (usage errors too). A difference found by ``compare`` or a failed read-back in
``simulate all`` is exit status 1. SIGINT, SIGTERM and SIGHUP unwind cleanly: temporary files
are removed, stopped processes resumed and the kernel restored before the process exits.
"""
from __future__ import annotations

import argparse
import sys

from engine.errors import PagemergeError

from . import claims, construe, ksm, mechanisms, memory, report, study, sweep, zram


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit status 2."""

    def error(self, message: str):
        where = self.prog.removeprefix("pagemerge").strip()
        self.exit(2, f"pagemerge: {where + ': ' if where else ''}{message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from pagemerge import __version__
    p = Parser(prog="pagemerge", description="Memory-deduplication designs compared with each other and with "
                                             "patent claims, on a merge engine faithful to Linux.")
    p.add_argument("--version", action="version", version=f"pagemerge {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    families = {}
    for verb, helptext in (("simulate", "run the engine's model"),
                           ("kernel", "run the same input through the live kernel (root)"),
                           ("compare", "model and live kernel side by side; exit 1 on any difference")):
        sp = sub.add_parser(verb, help=helptext, description=helptext)
        families[verb] = sp.add_subparsers(dest="what", required=True, metavar="WHAT")
    zram.add_parsers(families)
    ksm.add_parsers(families)
    mechanisms.add_parsers(sub, families)
    memory.add_parsers(sub)
    claims.add_parsers(sub)
    report.add_parsers(sub)
    study.add_parsers(sub)
    sweep.add_parsers(sub)
    construe.add_parsers(sub)
    return p


def main(argv=None) -> int:
    from engine import lease
    from engine.fileio import cleanup_on_signals
    parser = build_parser()
    a = parser.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)     # the exact command line, for the report's header
    try:
        with cleanup_on_signals(), lease.guard():
            return a.func(a)
    except PagemergeError as e:
        print(f"pagemerge: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        print("pagemerge: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("pagemerge: out of memory (the input is too large for this machine's memory)", file=sys.stderr)
        return 2
    except OSError as e:
        where = e.filename if e.filename is not None else "I/O"
        print(f"pagemerge: {where}: {e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
