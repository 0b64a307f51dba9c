
import numpy as np
import pytest

from pagemerge.cli import main
from engine.errors import InputError
from engine.pages import PAGE_SIZE, PageSet, parse_list


def test_open_reads_pages_by_offset(tmp_path):
    f = tmp_path / "p.pages"
    f.write_bytes(b"".join(bytes([i]) * PAGE_SIZE for i in range(5)))
    with PageSet.open(f) as ps:
        assert len(ps) == 5
        assert ps[3] == bytes([3]) * PAGE_SIZE
        assert bytes(ps.page(4)) == bytes([4]) * PAGE_SIZE
        starts = [s for s, _ in ps.chunks(2)]
        assert starts == [0, 2, 4]
        assert sum(c.shape[0] for _, c in ps.chunks(2)) == 5


def test_open_is_memory_mapped_not_read(tmp_path):
    f = tmp_path / "big.pages"
    with open(f, "wb") as fh:          # a sparse 1 GiB file: opening must not read it
        fh.truncate(1 << 30)
    with PageSet.open(f) as ps:
        assert len(ps) == (1 << 30) // PAGE_SIZE
        assert isinstance(ps.array, np.ndarray) and not ps.array.flags.owndata


@pytest.mark.parametrize("content,msg", [
    (b"", "empty page-set file"),
    (b"x" * 5000, "not a multiple of 4096"),
])
def test_bad_lengths(tmp_path, content, msg):
    f = tmp_path / "bad.pages"
    f.write_bytes(content)
    with pytest.raises(InputError, match=msg) as e:
        PageSet.open(f)
    assert str(f) in str(e.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such page-set file"):
        PageSet.open(tmp_path / "nope.pages")
    with pytest.raises(InputError, match="is a directory"):
        PageSet.open(tmp_path)


# an unreadable page set is tested as the unprivileged user nobody in tests/test_safety.py
# (CI runs as root, who can read any file)


def test_parse_list_bounded_by_the_page_set():
    lst = parse_list("0-999999,5", "--discard", 1_000_000)
    assert len(lst) == 1_000_001 and lst[0] == 0 and lst[-1] == 5 and lst[999_999] == 999_999
    assert lst.ranges == [range(0, 1_000_000), range(5, 6)]          # kept as ranges, not a list
    with pytest.raises(InputError, match="page set has 64 pages"):
        parse_list("64", "--discard", 64)
    with pytest.raises(InputError, match="operations"):
        parse_list(",".join(["0-63"] * 5), "--discard", 64)


def test_cli_bad_file_is_one_line_and_nonzero(tmp_path, capsys):
    f = tmp_path / "trunc.pages"
    f.write_bytes(b"y" * (PAGE_SIZE + 7))
    rc = main(["simulate", "zram", str(f), "--json"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and str(f) in err and "multiple of 4096" in err


def test_parse_list():
    assert parse_list("0-3,7,10-20:5") == [0, 1, 2, 3, 7, 10, 15, 20]
    assert parse_list("5") == [5]
    for bad in ("", "a", "3-1", "1-5:0", "1,,2", "-1"):
        with pytest.raises(InputError):
            parse_list(bad)
