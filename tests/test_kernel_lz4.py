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


# -- the exact blocks, fixed before the compressor was optimised -----------------------------------
def real_sample_pages() -> list[bytes]:
    """249 real process pages (every third page of engine/data/default.pages that is not
    same-filled, copied into tests/data so that the set never changes)."""
    import lzma
    from pathlib import Path
    raw = lzma.decompress((Path(__file__).parent / "data" / "real-sample.pages.xz").read_bytes())
    assert len(raw) == 249 * PAGE_SIZE
    return [raw[i:i + PAGE_SIZE] for i in range(0, len(raw), PAGE_SIZE)]


def lz4_crafted_pages() -> list[bytes]:
    """Pages aimed at LZ4's length fields and limits: literal runs of 14..16 and 269..271 bytes
    (the 15 and 15 + 255 boundaries of the token and its extension), match lengths of 18..20 and
    273..275, matches against position 0 (the empty-slot case), backward catch-up, and matches
    ending at or near the last-literals limit."""
    rng = np.random.default_rng(44)

    def rnd(n):
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    out = []
    for lit in (14, 15, 16, 269, 270, 271, 525, 526):
        word = rnd(8)
        chunks = []
        while sum(map(len, chunks)) < PAGE_SIZE:
            chunks += [word, rnd(lit)]
        out.append(b"".join(chunks)[:PAGE_SIZE])
    for mlen in (18, 19, 20, 273, 274, 275, 529, 530):
        p = bytearray(rnd(PAGE_SIZE))
        for dst in range(300, PAGE_SIZE - mlen, mlen + 301):
            p[dst:dst + mlen] = p[100:100 + mlen]
        out.append(bytes(p))
    for tail in range(0, 20):                       # a long match whose end is near the page end
        p = bytearray(rnd(PAGE_SIZE))
        k = PAGE_SIZE - 2000 - tail
        p[2000:2000 + k] = p[1000:1000 + k]
        out.append(bytes(p))
    for head in (1, 2, 3, 4, 5, 8):                 # the page's first bytes repeat later
        p = bytearray(rnd(PAGE_SIZE))
        for dst in range(500, PAGE_SIZE - 16, 777):
            p[dst:dst + head + 4] = p[0:head + 4]
        out.append(bytes(p))
    p = bytearray(rnd(PAGE_SIZE))                    # catch-up: the match really starts earlier
    for dst in range(1000, PAGE_SIZE - 64, 997):
        p[dst - 20:dst + 40] = p[200 - 20:200 + 40]
    out.append(bytes(p))
    return out


def block_digest(compress, pages) -> str:
    """SHA-256 of every page's block, each preceded by its length (4 bytes, little-endian)."""
    import hashlib
    h = hashlib.sha256()
    for p in pages:
        blk = compress(bytes(p))
        h.update(len(blk).to_bytes(4, "little") + blk)
    return h.hexdigest()


def golden_page_sets() -> dict:
    from tests.test_kernel_lzo import crafted_pages
    return {"lz4-crafted": lz4_crafted_pages(), "lzo-crafted": crafted_pages(),
            "mixed": list(pagesets.mixed_pages()), "ladder": list(pagesets.ladder_pages()),
            "random": list(pagesets.random_pages(50)), "real": real_sample_pages()}


# The pre-optimisation outputs: recorded from a run of the unoptimised compressor (commit
# "kernel-lz4/lzo: record the pre-optimisation blocks"); an optimisation must leave every byte.
LZ4_GOLDEN = {
    "lz4-crafted": "5c0552f4607e1b35a784d3dcd0b077159dcf469e66e653326c386c9d60bc6f51",
    "lzo-crafted": "5692e3464955e20a2acc009664fd7e124f3c981abee8d785232f7f0083bd9e6b",
    "mixed": "d284d79bb45923b12d24a50ffa1bd783083f895ab921c55d0fad77f077e9bba6",
    "ladder": "0417517af9ba614aae124216f469d69df1d45bc4349809b68606eb86a19be189",
    "random": "2155de0ea194b52d8286ca025c61b8deb92b50f823257370f355085ad54dbd71",
    "real": "07cb4fa2c59916ac427234ac8691c4c1fc10e8983a8dac2dad7466765952559c",
}


@pytest.mark.parametrize("which", ["lz4-crafted", "lzo-crafted", "mixed", "ladder", "random", "real"])
def test_blocks_equal_the_pre_optimisation_blocks(which):
    pages = golden_page_sets()[which]
    c = KernelLZ4()
    for p in pages:                                  # an independent decoder reads every block
        assert lz4.block.decompress(c._compress_raw(np.frombuffer(p, np.uint8)), uncompressed_size=PAGE_SIZE) == p
    rows = np.array([np.frombuffer(p, np.uint8) for p in pages])
    assert c._compress_raw_many(rows) == [c._compress_raw(r) for r in rows]   # the parallel batch path
    assert block_digest(lambda p: c._compress_raw(np.frombuffer(p, np.uint8)), pages) == LZ4_GOLDEN[which]
