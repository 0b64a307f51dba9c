"""Shared safety machinery for touching the live kernel: root, one lock, signal-safe cleanup."""
from __future__ import annotations

import contextlib
from contextlib import ExitStack
import fcntl
import os
import time

from ..errors import KernelUnavailable
from ..fileio import cleanup_on_signals

KERNEL_LOCK_PATH = "/run/lock/pagemerge-kernel.lock"


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise KernelUnavailable(f"{what}: needs root (the live kernel's sysfs knobs are root-only); "
                                f"run as root or use 'pagemerge simulate'")


@contextlib.contextmanager
def kernel_lock(timeout: float = 300.0):
    """An exclusive flock so two pagemerge runs never touch the kernel at once."""
    path = KERNEL_LOCK_PATH
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        path = "/tmp/pagemerge-kernel.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise KernelUnavailable(f"{path}: another pagemerge run holds the kernel lock") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)   # closing releases the lock


class KernelSession:
    """The shape every live-kernel session shares: root, signals turned into exceptions,
    the kernel lock, a subclass's ``_setup`` (which registers its own cleanup on the stack),
    and everything undone in reverse order on the way out, also on error or signal."""

    what = "kernel"

    def __enter__(self):
        require_root(self.what)
        stack = ExitStack()
        try:
            stack.enter_context(cleanup_on_signals())   # SIGINT/SIGTERM/SIGHUP unwind: the kernel is restored
            stack.enter_context(kernel_lock())
            self._setup(stack)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc):
        stack = getattr(self, "_stack", None)
        if stack is not None:
            self._stack = None
            stack.close()
        return False

    def _setup(self, stack: ExitStack) -> None:
        raise NotImplementedError
