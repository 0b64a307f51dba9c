"""Compressors behind one interface, with a content-hash cache.

Each compressor is an exact model of one of zram's backends on this kernel: its compressed
length equals the kernel's on every page. ``get_compressor`` takes the model's name or the
kernel's own: ``kernel-lzo-rle`` (``lzo-rle``, the kernel's default), ``kernel-lzo`` (``lzo``),
``kernel-lz4`` (``lz4``).
"""
from __future__ import annotations

from .base import (Compressor, CompressionCache, get_compressor, available_compressors, KERNEL_NAMES,
                   DEFAULT_COMPRESSOR)
from .kernel_lz4 import KernelLZ4
from .kernel_lzo import KernelLZO, KernelLZORLE

__all__ = ["Compressor", "CompressionCache", "KernelLZ4", "KernelLZO", "KernelLZORLE", "get_compressor",
           "available_compressors", "KERNEL_NAMES", "DEFAULT_COMPRESSOR"]
