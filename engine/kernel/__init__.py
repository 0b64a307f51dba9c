"""The live-kernel counterpart of the engine: the same inputs through the real zram0 and ksmd.

Everything here follows the safety rules in ``shared/reference/kernel-ground-truth.md``: touch
only zram0 and ``/sys/kernel/mm/ksm``, never configure swap, refuse a busy device, reset before
and after (also on SIGINT/SIGTERM), and hold one lock so two runs never overlap.
"""
from .safety import kernel_lock, require_root, KERNEL_LOCK_PATH
from .zram0 import KernelZram, zram_unavailable_reason

__all__ = ["KernelZram", "zram_unavailable_reason", "kernel_lock", "require_root", "KERNEL_LOCK_PATH"]
