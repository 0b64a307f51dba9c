"""The kernel-lzo and kernel-lzo-rle models: hand-computed blocks, exact round trips, and
compressed lengths equal to the live zram0's on real memory and on crafted pages."""
import numpy as np
import pytest

from engine.compress import KernelLZO, KernelLZORLE, get_compressor
from engine.compress import _lzo_kernel as K
from engine.compress.base import page_digest
from engine.errors import PagemergeError
from engine.pages import PAGE_SIZE
from tests import pagesets

MODELS = [KernelLZO, KernelLZORLE]


def crafted_pages() -> list[bytes]:
    """Pages aimed at every branch of the LZO1X-1 coder: zero runs of many lengths and places
    (including runs longer than the 2051-byte rle limit and runs ending at the search limit),
    short periodic patterns, literal runs of 1..3 between matches, offsets and lengths at the
    M2/M3 boundaries, long literal runs, short matches near the end, text, random."""
    rng = np.random.default_rng(15)
    out = []

    def rnd(n):
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    z = bytearray(PAGE_SIZE)
    z[-1] = 1                                      # not same-filled: one long zero run
    out.append(bytes(z))
    out.append(b"a" * (PAGE_SIZE - 1) + b"b")
    for start, length in [(0, 4), (0, 5), (7, 2051), (7, 2052), (100, 2600), (1000, 3076), (3, 4070),
                          (4050, 26), (4070, 6), (4071, 25), (4072, 4), (2000, 96), (16, 17)]:
        p = bytearray(rnd(PAGE_SIZE))
        p[start:start + length] = bytes(min(length, PAGE_SIZE - start))
        out.append(bytes(p))
    for gap in range(1, 40, 3):                    # zero runs of 4..7 bytes with literals between
        p = bytearray(rnd(PAGE_SIZE))
        for i in range(0, PAGE_SIZE - 8, gap + 4 + gap % 4):
            p[i:i + 4 + gap % 4] = bytes(4 + gap % 4)
        out.append(bytes(p))
    for period in (2, 3, 5, 7, 9, 12, 16, 31, 33, 34, 100, 255, 1000, 2047, 2048, 2049, 2050, 3000):
        base = rnd(period)
        out.append((base * (PAGE_SIZE // period + 1))[:PAGE_SIZE])
    for lit in (1, 2, 3, 4, 5, 17, 18, 19, 273, 274, 600):   # match, literals, match, ...
        word = rnd(12)
        chunks = []
        while sum(map(len, chunks)) < PAGE_SIZE:
            chunks.append(word)
            chunks.append(rnd(lit))
        out.append(b"".join(chunks)[:PAGE_SIZE])
    for mlen in (4, 5, 8, 9, 33, 34, 288, 289, 600):         # matches of a given length
        for off in (100, 2048, 2049, 3000):
            p = bytearray(rnd(PAGE_SIZE))
            src = 50
            dst = src + off
            if dst + mlen <= PAGE_SIZE:
                p[dst:dst + mlen] = p[src:src + mlen]
                out.append(bytes(p))
    for end in range(4060, 4096, 3):               # a short match ending near the page end
        p = bytearray(rnd(PAGE_SIZE))
        k = min(8, PAGE_SIZE - end + 4)
        p[end - 4:end - 4 + k] = p[200:200 + k]
        out.append(bytes(p))
    out.append(rnd(PAGE_SIZE))
    out.append(bytes(rng.integers(0, 4, PAGE_SIZE, dtype=np.uint8)))
    out.append(bytes(rng.integers(0, 2, PAGE_SIZE, dtype=np.uint8) * 255))
    text = (b"zram: the kernel's default compressor is lzo-rle; pages that compress to 3625 bytes "
            b"or more are stored whole. ") * 60
    out.append(text[:PAGE_SIZE])
    words = rng.integers(0, 50, PAGE_SIZE // 8, dtype=np.uint64).astype("<u8").tobytes()
    out.append(words)                              # small 64-bit integers: many short zero runs
    return [p for p in out if len(p) == PAGE_SIZE and p[:8] * 512 != p]


# -- hand-computed blocks --------------------------------------------------------------------
def test_hand_computed_lzo_run_of_one_byte():
    # LZO1X-1 on 'a' * 4096: the first probe is at 5 (start + 4, then one literal step) and
    # matches the empty dictionary slot (offset 0): 5 literals (02 'aaaaa'); the match is
    # extended in 8-byte words until the word reaches end - 20 = 4076: length 4076, offset 5,
    # an M3 of length 33 + 15 * 255 + 218 (20, fifteen 00, da) and offset bytes (5 - 1) << 2
    # (10 00); then 15 literals (0c, 15 x 'a') and the end marker 11 00 00: 44 bytes.
    blk, _ = KernelLZO().compress(b"a" * PAGE_SIZE)
    expected = (b"\x02" + b"a" * 5 + b"\x20" + b"\x00" * 15 + b"\xda" + b"\x10\x00"
                + b"\x0c" + b"a" * 15 + b"\x11\x00\x00")
    assert blk == expected


def test_hand_computed_lzo_rle_zero_runs():
    # lzo-rle on 4095 zeros then 0x01: header 11 01; 5 literal zeros (02 00 00 00 00 00); a zero
    # run of the maximum 2051 (run - 4 = 2047: 1f fc ff ff); from 2056 a run to the search limit
    # 4076, 2020 bytes (2016: 18 fc ff fc); 20 literals (00 02, 19 zeros, 01); end marker.
    page = bytes(PAGE_SIZE - 1) + b"\x01"
    blk, _ = KernelLZORLE().compress(page)
    expected = (b"\x11\x01" + b"\x02" + bytes(5) + b"\x1f\xfc\xff\xff" + b"\x18\xfc\xff\xfc"
                + b"\x00\x02" + bytes(19) + b"\x01" + b"\x11\x00\x00")
    assert blk == expected
    assert KernelLZORLE().decompress(blk) == page


def test_hand_computed_short_inputs():
    # 20 bytes or fewer are one literal run: 17 + t, the bytes, the end marker
    src = np.frombuffer(b"hello lzo!", np.uint8)
    dst = np.zeros(K.bound(10), np.uint8)
    n = K.compress_block(src, dst, np.zeros(K.D_SIZE, np.uint16), False)
    assert bytes(dst[:n]) == bytes([17 + 10]) + b"hello lzo!" + b"\x11\x00\x00"
    n = K.compress_block(src, dst, np.zeros(K.D_SIZE, np.uint16), True)
    assert bytes(dst[:n]) == b"\x11\x01" + bytes([17 + 10]) + b"hello lzo!" + b"\x11\x00\x00"


# -- round trips and the batch path ------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
@pytest.mark.parametrize("which", ["crafted", "mixed", "ladder", "random"])
def test_exact_round_trip(cls, which):
    rows = {"crafted": crafted_pages, "mixed": lambda: list(pagesets.mixed_pages()),
            "ladder": lambda: list(pagesets.ladder_pages()), "random": lambda: list(pagesets.random_pages(30))}[which]()
    c = cls()
    for p in rows:
        blk, _ = c.compress(p)
        assert len(blk) <= K.bound(PAGE_SIZE)
        assert c.decompress(blk) == bytes(p)
        assert blk.startswith(b"\x11\x01") == (cls is KernelLZORLE)


@pytest.mark.parametrize("size", [21, 100, 4096, 0xbfff + 50, 0xc000 * 2 + 7])
@pytest.mark.parametrize("rle", [False, True])
def test_round_trip_across_blocks(size, rle):
    # inputs longer than one block (0xc000 / 0xbfff bytes) carry pending literals across
    rng = np.random.default_rng(size)
    src = np.frombuffer((rng.integers(0, 3, size, dtype=np.uint8) * 7).tobytes(), np.uint8).copy()
    src[size // 3: size // 3 + 5000] = 0
    dst = np.empty(K.bound(size), np.uint8)
    n = K.compress_block(src, dst, np.zeros(K.D_SIZE, np.uint16), rle)
    back = np.empty(size, np.uint8)
    assert K.decompress_block(dst[:n].copy(), back) == size
    assert bytes(back) == bytes(src)


def test_corrupt_blocks_are_refused():
    c = KernelLZORLE()
    blk, _ = c.compress(crafted_pages()[5])
    with pytest.raises(PagemergeError, match="corrupt block"):
        c.decompress(blk[:-3])                      # no end marker
    with pytest.raises(PagemergeError, match="corrupt block"):
        c.decompress(blk + b"\x00")                 # trailing input
    # one literal, then an M3 match (length 3) at offset 100: before the start of the output
    bad = bytes([17 + 1]) + b"x" + bytes([32 | 1]) + (99 << 2).to_bytes(2, "little") + b"\x11\x00\x00"
    dst = np.empty(PAGE_SIZE, np.uint8)
    assert K.decompress_block(np.frombuffer(bad, np.uint8), dst) == K.E_LOOKBEHIND_OVERRUN
    good = bytes([17 + 1]) + b"x" + bytes([32 | 1]) + (0).to_bytes(2, "little") + b"\x11\x00\x00"
    assert K.decompress_block(np.frombuffer(good, np.uint8), dst) == 4 and bytes(dst[:4]) == b"xxxx"


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_batch_equals_single_and_cache_compresses_once(cls):
    rows = np.array([np.frombuffer(p, np.uint8) for p in crafted_pages() + list(pagesets.mixed_pages())])
    single = [cls()._compress_raw(r) for r in rows]
    c = cls()
    keys = [page_digest(r) for r in rows]
    blocks, _ = c.compress_many(rows, keys)
    assert blocks == single
    assert c.compressions == len(set(keys))
    c.compress_many(rows, keys)
    assert c.compressions == len(set(keys))


def test_names():
    assert get_compressor("lzo-rle").kernel_name == "lzo-rle"
    assert get_compressor("kernel-lzo").kernel_name == "lzo"


# -- the live kernel ------------------------------------------------------------------------------
def _model_lengths(cls, rows):
    c = cls()
    lens = [len(c.compress(p)[0]) for p in rows]
    return [PAGE_SIZE if n >= 3625 else n for n in lens]   # the kernel shows huge pages as 4096


@pytest.mark.kernel
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_lengths_equal_the_kernel(live_zram, real_pages, cls):
    from engine.zram import is_same_filled
    from tests.test_kernel_lz4 import _kernel_lengths
    rows = [bytes(p) for p in real_pages if not is_same_filled(p)[0]][:2000]
    rows += crafted_pages() + [bytes(p) for p in pagesets.ladder_pages()]
    kernel = _kernel_lengths(rows, cls.kernel_name)
    model = _model_lengths(cls, rows)
    mismatches = [(i, m, k) for i, (m, k) in enumerate(zip(model, kernel)) if m != k]
    assert not mismatches, mismatches[:10]
    assert any(m == PAGE_SIZE for m in model) and any(3400 < m < 3625 for m in model)


# -- the exact blocks, fixed before the compressor was optimised -----------------------------------
# The pre-optimisation outputs: recorded from a run of the unoptimised compressor (commit
# "kernel-lz4/lzo: record the pre-optimisation blocks"); an optimisation must leave every byte.
LZO_GOLDEN = {
    ("kernel-lzo", "lz4-crafted"):
        "7b4de09455a342314cdbd88de3fb9b5d3e33304679f96536e8b388a64d424dad",
    ("kernel-lzo", "lzo-crafted"):
        "906b92bf732d5893d3d4443060c329c4b792599323613aa12719e6e28ac106a5",
    ("kernel-lzo", "mixed"):
        "52e1590f752e6792ad1a4b1a88f9304657b9deaee3b087a20899a75179a976a5",
    ("kernel-lzo", "ladder"):
        "fad7bac4dba5fe95151e8c8a2658ff57510b1fd28c80820cc85dbf414d618b97",
    ("kernel-lzo", "random"):
        "dd66c8bf5caa130597a870cb9c4c2c1cbea037b0253d699a13087646023b0263",
    ("kernel-lzo", "real"):
        "99810ad717c6194cd41807111808358edf75fdae22586bba65c53e1e958504ae",
    ("kernel-lzo-rle", "lz4-crafted"):
        "32eef8d90f0866de33a8cef520f58cb91a3cba0131956e53e8b77e77e9734b22",
    ("kernel-lzo-rle", "lzo-crafted"):
        "d889207de8c1c7c5eb5b557e0b394117c4dedda09dd15f52cae3f4a020f02ed3",
    ("kernel-lzo-rle", "mixed"):
        "aec2f816291a813830da17f2bbc53bcc392d1c6f7d6d39d3f6c0e3d27dfc4223",
    ("kernel-lzo-rle", "ladder"):
        "b6b3d507b98bb0bd1a99f66b28aa12d4dff15bcb5cb3529d14ae3cdc73809830",
    ("kernel-lzo-rle", "random"):
        "dfebda719fcb81ea07a937b2a7ca9716cefe08069899d651eb92fa99bbfb11f2",
    ("kernel-lzo-rle", "real"):
        "566f13649ca3b6662732ff4d3d3f15ea39a618f84fde317ee45d078cc65c30bb",
}


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
@pytest.mark.parametrize("which", ["lz4-crafted", "lzo-crafted", "mixed", "ladder", "random", "real"])
def test_blocks_equal_the_pre_optimisation_blocks(cls, which):
    from tests.test_kernel_lz4 import block_digest, golden_page_sets
    pages = golden_page_sets()[which]
    c = cls()
    for p in pages:                                  # the checked decoder reads every block back
        assert c.decompress(c._compress_raw(np.frombuffer(p, np.uint8))) == p
    rows = np.array([np.frombuffer(p, np.uint8) for p in pages])
    assert c._compress_raw_many(rows) == [c._compress_raw(r) for r in rows]   # the parallel batch path
    assert block_digest(lambda p: c._compress_raw(np.frombuffer(p, np.uint8)), pages) == LZO_GOLDEN[(cls.name, which)]
