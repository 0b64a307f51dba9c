"""``kernel-lzo`` and ``kernel-lzo-rle``: exact models of zram's ``lzo`` and ``lzo-rle``
backends (see ``_lzo_kernel``). ``lzo-rle`` is the kernel's default zram compressor."""
from __future__ import annotations

import numpy as np

from . import _lzo_kernel as K
from .base import Compressor, register
from ..errors import PagemergeError


class _KernelLZOBase(Compressor):
    rle = False

    def __init__(self, cache=None):
        super().__init__(cache)
        self._dst = np.empty(K.bound(4096), np.uint8)
        self._dict = np.empty(K.D_SIZE, np.uint16)

    def _compress_raw(self, page: np.ndarray) -> bytes:
        if self._dst.shape[0] < K.bound(page.shape[0]):
            self._dst = np.empty(K.bound(page.shape[0]), np.uint8)
        n = K.compress_block(np.ascontiguousarray(page), self._dst, self._dict, self.rle)
        return self._dst[:n].tobytes()

    def _compress_raw_many(self, pages: np.ndarray) -> list[bytes]:
        k = pages.shape[0]
        out = np.empty((k, K.bound(pages.shape[1])), np.uint8)
        lengths = np.empty(k, np.int64)
        K.compress_pages(np.ascontiguousarray(pages), out, lengths, self.rle)
        return [out[i, :lengths[i]].tobytes() for i in range(k)]

    def decompress(self, block: bytes, size: int = 4096) -> bytes:
        self.decompressions += 1
        dst = np.empty(size, np.uint8)
        n = K.decompress_block(np.frombuffer(block, np.uint8), dst)
        if n != size:
            raise PagemergeError(f"{self.name}: corrupt block (decoder returned {n}, expected {size} bytes)")
        return dst.tobytes()


@register
class KernelLZO(_KernelLZOBase):
    name = "kernel-lzo"
    kernel_name = "lzo"
    rle = False


@register
class KernelLZORLE(_KernelLZOBase):
    name = "kernel-lzo-rle"
    kernel_name = "lzo-rle"
    rle = True
