"""Compressors behind one interface, with a content-hash cache.

``get_compressor("kernel-lz4")`` returns the exact model of the kernel's zram ``lz4`` backend.
``lzo`` and ``lzo-rle`` (the kernel's default) are refused with a clear message: they have no
exact model yet, and an approximation would silently give wrong ``compr_data_size``.
"""
from __future__ import annotations

from .base import Compressor, CompressionCache, get_compressor, available_compressors, KERNEL_NAMES
from .kernel_lz4 import KernelLZ4

__all__ = ["Compressor", "CompressionCache", "KernelLZ4", "get_compressor",
           "available_compressors", "KERNEL_NAMES"]
