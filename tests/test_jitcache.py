"""The numba cache is dropped when any compiled source changes (numba itself only notices a
change in a function's own file)."""
from engine import _jitcache


def test_a_changed_callee_drops_the_whole_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    (tmp_path / "caller.py").write_text("from numba import njit\n@njit(cache=True)\ndef f(x):\n    return g(x)\n")
    sub = tmp_path / "compress"
    sub.mkdir()
    (sub / "callee.py").write_text("from numba import njit\n@njit(cache=True)\ndef g(x):\n    return x + 1\n")
    (tmp_path / "plain.py").write_text("x = 1\n")
    for d in (tmp_path / "__pycache__", sub / "__pycache__"):
        d.mkdir()
        (d / "m.f-3.py311.nbi").write_bytes(b"i")
        (d / "m.f-3.py311.1.nbc").write_bytes(b"c")
        (d / "m.cpython-311.pyc").write_bytes(b"p")
    assert sorted(p.name for p in _jitcache.compiled_sources(tmp_path)) == ["callee.py", "caller.py"]
    first = _jitcache.refresh(tmp_path)                  # no stamp yet: the cache cannot be trusted
    assert len(first) == 4
    for d in (tmp_path / "__pycache__", sub / "__pycache__"):
        (d / "m.f-3.py311.nbi").write_bytes(b"i")
        (d / "m.f-3.py311.1.nbc").write_bytes(b"c")
    assert _jitcache.refresh(tmp_path) == []              # nothing changed: the cache is kept
    (tmp_path / "plain.py").write_text("x = 2\n")         # not compiled code: the cache is kept
    assert _jitcache.refresh(tmp_path) == []
    (sub / "callee.py").write_text("from numba import njit\n@njit(cache=True)\ndef g(x):\n    return x + 2\n")
    gone = _jitcache.refresh(tmp_path)                    # the callee changed: every cache file goes
    assert sorted(p.name for p in gone) == ["m.f-3.py311.1.nbc"] * 2 + ["m.f-3.py311.nbi"] * 2
    assert (tmp_path / "__pycache__" / "m.cpython-311.pyc").exists()


def test_the_engine_stamp_matches_its_sources():
    _jitcache.refresh()
    assert (_jitcache.ROOT / "__pycache__" / _jitcache.STAMP).read_text() == _jitcache.sources_stamp()
