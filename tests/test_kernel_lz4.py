"""The kernel-lz4 model: exact blocks, decompressible with python-lz4, lengths equal the kernel's."""
import lz4.block
import numpy as np
import pytest

from engine.compress import get_compressor, KernelLZ4
from engine.errors import InputError
from engine.pages import PAGE_SIZE
from tests import pagesets


def test_hand_computed_run_of_one_byte():
    # 'a' * 4096: literal 'a', match at offset 1 of 4 + 4086 bytes (token 15, fifteen 255s,
    # then 246), then the last five bytes as literals: 1 + 1 + 2 + 16 + 1 + 5 = 26 bytes.
    blk, _ = KernelLZ4().compress(b"a" * PAGE_SIZE)
    expected = bytes([0x1F]) + b"a" + b"\x01\x00" + b"\xff" * 15 + bytes([246]) + bytes([0x50]) + b"aaaaa"
    assert blk == expected


def test_hand_computed_incompressible_tail():
    # fewer than 13 bytes: everything is one literal run
    from engine.compress._lz4_kernel import compress_block, bound
    src = np.frombuffer(b"hello world!", np.uint8)
    dst = np.zeros(bound(12), np.uint8)
    n = compress_block(src, dst, np.zeros(8192, np.uint16), 1)
    assert bytes(dst[:n]) == bytes([12 << 4]) + b"hello world!"


@pytest.mark.parametrize("ps", [pagesets.mixed_pages(), pagesets.ladder_pages(), pagesets.random_pages(50)],
                         ids=["mixed", "ladder", "random"])
def test_blocks_decompress_with_python_lz4(ps):
    c = KernelLZ4()
    for page in ps:
        blk, _ = c.compress(page)
        assert lz4.block.decompress(blk, uncompressed_size=PAGE_SIZE) == bytes(page)


def test_batch_equals_single_and_cache_compresses_once():
    ps = pagesets.mixed_pages()
    single = [KernelLZ4()._compress_raw(np.asarray(p)) for p in ps.array]
    c = KernelLZ4()
    from engine.compress.base import page_digest
    keys = [page_digest(p) for p in ps.array]
    blocks, cached = c.compress_many(ps.array, keys)
    assert blocks == single
    assert c.compressions == len(set(keys))          # a duplicate page is never compressed twice
    c.compress_many(ps.array, keys)
    assert c.compressions == len(set(keys))


def test_kernel_names_select_the_exact_models():
    assert get_compressor("lz4").name == "kernel-lz4"
    assert get_compressor("lzo").name == "kernel-lzo"
    assert get_compressor("lzo-rle").name == "kernel-lzo-rle"
    with pytest.raises(InputError, match="unknown compressor"):
        get_compressor("zstd")


def _kernel_lengths(pages, algo="lz4"):
    """Compressed length of each page on the live zram0 (backend ``algo``), one page at a time:
    the growth of ``compr_data_size`` (4096 for a huge page, 0 for a same-filled one)."""
    from engine.kernel.zram0 import KernelZram
    out = []
    with KernelZram(len(pages) * PAGE_SIZE, algo) as k:
        prev = k.stats().mm_stat["compr_data_size"]
        for i, p in enumerate(pages):
            k.write_page(i, p)
            cur = k.stats().mm_stat["compr_data_size"]
            out.append(cur - prev)
            prev = cur
    return out


@pytest.mark.kernel
def test_lengths_equal_the_kernel(live_zram, real_pages):
    from engine.zram import is_same_filled
    c = KernelLZ4()
    rows = [bytes(p) for p in real_pages if not is_same_filled(p)[0]][:1500]
    rows += [bytes(p) for p in pagesets.ladder_pages()]
    kernel = _kernel_lengths(rows, "lz4")
    model = [len(c.compress(p)[0]) for p in rows]
    model = [PAGE_SIZE if m >= 3625 else m for m in model]       # kernel shows huge pages as 4096
    mismatches = [(i, m, k) for i, (m, k) in enumerate(zip(model, kernel)) if m != k]
    assert not mismatches, mismatches[:10]
    assert any(m == PAGE_SIZE for m in model) and any(3500 < m < 3625 for m in model)
