"""Run ``pagemerge`` in a forked child: isolated, bounded in time, optionally unprivileged.

A forked child shares the modules this process already imported, so a case costs
milliseconds rather than a fresh interpreter's start-up, and the child can drop its
privileges to ``nobody`` even where the interpreter lives under a folder ``nobody`` cannot
read. The parent kills the child (its own, so a validated pid) when the time runs out.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

NOBODY = 65534


@dataclass
class Outcome:
    rc: int | None            # None: still running when the time ran out (killed)
    out: str
    err: str
    seconds: float


def warm_imports() -> None:
    """Import everything a command may import lazily, so that an unprivileged child (which
    may not read the interpreter's own folders) never needs to open a module file."""
    import importlib
    import pkgutil
    import engine
    import claims
    import reports
    import pagemerge
    for pkg in (engine, claims, reports, pagemerge):
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if not m.name.endswith("__main__"):
                importlib.import_module(m.name)
    for name in ("tqdm.auto", "defusedxml.ElementTree", "pdfplumber", "yaml", "tempfile", "inspect", "json",
                 "pandas", "networkx", "jinja2", "matplotlib", "matplotlib.pyplot", "encodings.utf_16",
                 "encodings.utf_32", "encodings.utf_8_sig", "encodings.idna"):
        importlib.import_module(name)


def _reader(fd: int, sink: list) -> None:
    with os.fdopen(fd, "rb") as f:
        sink.append(f.read())


def run(argv: list[str], timeout: float = 60.0, cwd: str | None = None, uid: int | None = None,
        stdin: bytes | None = None, env: dict | None = None) -> Outcome:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:                                        # the child
        code = 70
        try:
            os.close(out_r)
            os.close(err_r)
            os.close(in_w)
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            sys.stdin = open(0, "r", closefd=False)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            os.setpgid(0, 0)
            if env:
                os.environ.update(env)
            if cwd:
                os.chdir(cwd)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            from pagemerge.cli import main
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            code = 71
        finally:
            os._exit(code if isinstance(code, int) else 1)
    os.close(out_w)
    os.close(err_w)
    os.close(in_r)
    outs, errs = [], []
    readers = [threading.Thread(target=_reader, args=(out_r, outs), daemon=True),
               threading.Thread(target=_reader, args=(err_r, errs), daemon=True)]
    for t in readers:
        t.start()
    try:
        if stdin:
            os.write(in_w, stdin)
    finally:
        os.close(in_w)
    rc = None
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    if rc is None:
        assert pid > 1 and pid != os.getpid()
        os.killpg(pid, signal.SIGKILL)                 # our own child's own process group
        os.waitpid(pid, 0)
    for t in readers:
        t.join(5)
    return Outcome(rc, (outs[0] if outs else b"").decode(errors="replace"),
                   (errs[0] if errs else b"").decode(errors="replace"), time.monotonic() - t0)
