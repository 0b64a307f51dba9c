"""Running work on a Dask cluster: a local one on this machine, or an existing one by address.

:func:`dask_client` gives a ``distributed.Client``. Without an address it starts a
``LocalCluster`` of ``workers`` processes with one thread each (the engine's compiled kernels
release the GIL, but a mechanism's run is Python, so processes are what scale). With an
address (``tcp://HOST:8786``) it connects to a scheduler started elsewhere (``dask scheduler``
on one host, ``dask worker tcp://HOST:8786`` on the others) and checks that the workers run
the same pagemerge. Tasks take file paths, never page contents: every worker opens the page
set itself, so the files must be reachable at the same paths on the client and on every
worker. A task checks that the file it sees has the size and modification time the client saw.

:func:`analyze_distributed` is ``analyze`` for one huge dump: each task profiles a range of
chunks (:func:`engine.workloads.analyze.map_chunk`) and returns its partial profile, and the
client folds them in with the associative :func:`~engine.workloads.analyze.merge_profile` as
they arrive. The result equals the in-process ``analyze``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import socket

from ..errors import InputError, PagemergeError

#: how long to wait for a remote scheduler to answer, and for its first worker
CONNECT_TIMEOUT_S = 20
WORKER_WAIT_S = 60
_ADDRESS = re.compile(r"\A(?:(?:tcp|tls|ws|wss|ucx)://)?[A-Za-z0-9._\-]+(?:\[[0-9A-Fa-f:.]+\])?:\d{1,5}\Z|"
                      r"\A(?:tcp|tls|ws|wss|ucx)://\[[0-9A-Fa-f:.]+\]:\d{1,5}\Z")


def check_address(address: str) -> str:
    """A scheduler address as ``dask worker`` takes it (``tcp://HOST:PORT`` or ``HOST:PORT``)."""
    a = address.strip()
    if not _ADDRESS.match(a):
        raise InputError(f"--scheduler: {address!r} is not a scheduler address (e.g. tcp://HOST:8786)")
    return a


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def worker_identity() -> dict:
    """Run on a worker: which pagemerge it imports, and where it runs."""
    from engine._util import package_version
    __version__ = package_version()
    return {"version": __version__, "host": socket.gethostname(), "pid": os.getpid()}


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, insecure_scheduler: bool = False):
    """A ``distributed.Client`` on a new local cluster (``workers`` processes, one thread
    each; default: one per core) or on the scheduler at ``scheduler``. Closed on exit.

    Whoever can talk to a Dask scheduler can run code on its workers, and pagemerge's workers
    may run as root. So the local cluster uses TLS with temporary credentials that only this
    client holds (loopback is not a trust boundary on a machine with other users), and, as
    root, a scheduler at a plain ``tcp://`` address is refused unless ``insecure_scheduler``
    says the network is trusted; ``tls://`` uses the TLS settings of Dask's configuration."""
    from distributed import Client, LocalCluster
    from engine._util import package_version
    __version__ = package_version()
    if workers is not None and scheduler is not None:
        raise InputError("--workers and --scheduler exclude each other (the cluster at --scheduler has its own workers)")
    if scheduler is None:
        # the scheduler listens on loopback; its HTTP server takes any free loopback port (no
        # clash with a cluster already on 8787, nothing offered to other hosts)
        n = workers or default_workers()
        if n < 1:
            raise InputError(f"--workers: {n} is not a number of workers (1 or more)")
        # the cores are shared out between the workers: each one's compiled kernels (numba's
        # parallel loops) get their share, so N workers never start N x cores threads
        threads = str(max(1, default_workers() // n))
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                          silence_logs=logging.ERROR, env={"NUMBA_NUM_THREADS": threads}, security=True,
                          protocol="tls://", host="127.0.0.1") as cluster, \
                Client(cluster) as client:
            client.pagemerge_where = f"a local Dask cluster of {n} worker process(es) on {socket.gethostname()}"
            yield client
        return
    address = check_address(scheduler)
    if os.geteuid() == 0 and not address.startswith(("tls://", "wss://")) and not insecure_scheduler:
        raise InputError(f"--scheduler: {address} is not encrypted or authenticated, and whoever reaches it can run "
                         f"code on this machine as root; use a tls:// scheduler (Dask TLS configuration), or say "
                         f"the network is trusted with --insecure-scheduler")
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as e:
        raise InputError(f"--scheduler: cannot connect to {address} ({_one_line(e)})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, OSError):
            raise InputError(f"--scheduler: {address} has no worker (none joined within {WORKER_WAIT_S} s; start "
                             f"'dask worker {address}' on the hosts that should compute)") from None
        try:
            seen = client.run(worker_identity)
        except Exception as e:                       # noqa: BLE001 - any failure on a worker is reported in one line
            raise PagemergeError(f"--scheduler: the workers of {address} cannot run pagemerge "
                                 f"(install it on every worker; {_one_line(e)})") from None
        bad = sorted(f"{w} ({d['version']})" for w, d in seen.items() if d["version"] != __version__)
        if bad:
            raise PagemergeError(f"--scheduler: worker(s) {', '.join(bad)} run another pagemerge version than this "
                                 f"one ({__version__}); install the same on every worker")
        client.pagemerge_where = f"the Dask cluster at {address} ({len(seen)} worker(s))"
        yield client
    finally:
        client.close()


def _one_line(e: BaseException) -> str:
    s = " ".join(str(e).split()) or type(e).__name__
    return s if len(s) <= 300 else s[:297] + "..."


def task_result(fut, what: str):
    """The result of a finished task; a worker that died running it (out of memory, killed)
    is one line naming ``what``. Errors raised by the task itself arrive as they were raised."""
    from distributed import KilledWorker
    try:
        return fut.result()
    except KilledWorker as e:
        raise PagemergeError(f"{what}: the worker running it died ({_one_line(e)}); out of memory? "
                             f"try fewer --workers") from None


def file_stamp(path: str | os.PathLike) -> tuple[int, int]:
    """(size, modification time in whole seconds): what a worker checks to be sure it reads
    the file the client saw."""
    st = os.stat(path)
    return st.st_size, int(st.st_mtime)


def check_stamp(path: str, expected) -> None:
    """Run on a worker: refuse a file that differs from what the client saw."""
    try:
        got = file_stamp(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file on worker {socket.gethostname()} (the page sets must be reachable "
                         f"at the same paths on every worker)") from None
    if tuple(got) != tuple(expected):
        raise InputError(f"{path}: on worker {socket.gethostname()} it is {got[0]} bytes modified at {got[1]}, but "
                         f"{expected[0]} bytes modified at {expected[1]} where the study started (changed meanwhile, "
                         f"or not the same file at the same path)")


# ---- analyze on a cluster -------------------------------------------------------------------
def profile_range(path: str, stamp, start: int, stop: int, chunk_pages: int, algo: str):
    """Run on a worker: the partial profile of pages ``start`` to ``stop - 1`` of ``path``."""
    from ..compress import get_compressor
    from ..pages import PageSet
    from .analyze import map_chunk, reduce_profiles
    check_stamp(path, stamp)
    comp = get_compressor(algo)
    comp.cache.max_bytes = 0
    with PageSet.open(path) as pages:      # chunks() releases each chunk once it is read
        return reduce_profiles(map_chunk(chunk, comp) for _s, chunk in pages.chunks(chunk_pages, start, stop))


def chunk_ranges(n_pages: int, chunk_pages: int, n_ranges: int) -> list[tuple[int, int]]:
    """``n_ranges`` (or fewer) contiguous page ranges covering ``0..n_pages``, each a whole
    number of chunks (the last may be shorter)."""
    chunks = -(-n_pages // chunk_pages)
    per = max(1, -(-chunks // max(1, n_ranges)))
    return [(c * chunk_pages, min(n_pages, (c + per) * chunk_pages)) for c in range(0, chunks, per)]


def analyze_distributed(path: str, workers: int | None = None, scheduler: str | None = None,
                        chunk_pages: int = 4096, ranges_per_worker: int = 4, algo: str | None = None,
                        progress: bool | None = None, insecure_scheduler: bool = False) -> dict:
    """The content profile of one page set computed on a Dask cluster; equal to
    :func:`engine.workloads.analyze.analyze` on the same file."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    from ..compress import DEFAULT_COMPRESSOR, get_compressor
    from ..pages import PageSet
    from .analyze import Profile, merge_profile, summarize
    path = str(path)
    algo = algo or DEFAULT_COMPRESSOR
    comp_name = get_compressor(algo).kernel_name      # an unknown compressor is refused here
    with PageSet.open(path) as pages:                 # validates the file here, before any cluster starts
        n = len(pages)
        name = pages.name
    stamp = file_stamp(path)
    with dask_client(workers, scheduler, insecure_scheduler) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        ranges = chunk_ranges(n, chunk_pages, n_workers * ranges_per_worker)
        futs = [client.submit(profile_range, path, stamp, s, e, chunk_pages, algo, pure=False) for s, e in ranges]
        prof = Profile()
        bar = tqdm(total=n, unit="page", desc="analyze", disable=None if progress is None else not progress,
                   leave=False)
        try:
            for fut in as_completed(futs):
                part = task_result(fut, f"{path} (pages {ranges[futs.index(fut)][0]} on)")
                merge_profile(prof, part)               # in place: no copy of what is merged so far
                bar.update(part.pages)
                fut.release()
        finally:
            bar.close()
            for f in futs:
                f.cancel()
    return summarize(prof, name, comp_name)
