"""Claim construction: every reading of claim 1 that the engine runs, on pages whose outcome is
worked out by hand; the constructions data and its validator; construe on real memory; the CLI.

The expectations come from the pages themselves (which pages are equal, what a page is
stored as, how big a page is), never from a run of the code under test.
"""
import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine.compress import get_compressor
from engine.errors import InputError
from engine.mechanisms import Workload, make
from engine.mechanisms.construe import construe_runs
from engine.pages import PAGE_SIZE, PageSet, default_pages_path
from engine.swap import peek

ALGO = "kernel-lz4"


def clen(page: bytes) -> int:
    """The compressed length the store sees (the compressor is not what these tests test)."""
    return len(get_compressor(ALGO).compress(page)[0])


def run(pages, **params):
    ps = PageSet.from_pages(list(pages), "hand-made")
    return make("patent_claim1", algo=ALGO, **params).run(Workload(ps))


def incompressible(seed=1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, PAGE_SIZE, dtype=np.uint8).tobytes()


def prefix_page(k: int, seed=7) -> bytes:
    """k random bytes then zeros: compresses to a little more than k bytes."""
    return np.random.default_rng(seed).integers(0, 256, k, dtype=np.uint8).tobytes() + bytes(PAGE_SIZE - k)


TEXT = (b"The quick brown fox jumps over the lazy dog. " * 100)[:PAGE_SIZE]


# ---- the larger branch's comparison and the hash input ---------------------------------------------
def test_incompressible_duplicates_share_under_compressed_form_hashes_not_under_the_literal_reading():
    r = incompressible()
    assert clen(r) > PAGE_SIZE                    # lz4 expands random bytes: the larger branch
    pages = [r, r]
    default = run(pages)
    assert default.result()["pages_shared_large"] == 1 and default.pages_merged_ == 1
    assert default.saved_bytes_ == PAGE_SIZE      # stored whole, shared once
    raw = run(pages, large_branch="raw")
    assert raw.result()["pages_shared_large"] == 1 and raw.saved_bytes_ == PAGE_SIZE
    literal = run(pages, large_branch="literal")   # a hash of compressed bytes against hashes of raw pages
    assert literal.pages_merged_ == 0 and literal.result()["pages_shared_large"] == 0
    assert literal.mm_stat_["huge_pages"] == 2 and literal.verified_readback_
    # the literal comparison finds the page once the first hash value is itself of the raw page
    both = run(pages, large_branch="literal", hash_input="page-in-pass")
    assert both.result()["pages_shared_large"] == 1 and both.verified_readback_
    # work: the raw reading hashes each candidate's raw page as well as its compressed bytes
    assert raw.work_["bytes_hashed"] - default.work_["bytes_hashed"] == 2 * PAGE_SIZE
    assert raw.work_["pages_hashed"] == 2 * default.work_["pages_hashed"] == 4


def test_hash_input_over_the_page_shares_the_same_pages_but_hashes_whole_pages():
    a = TEXT
    b = TEXT[:-1] + b"!"
    pages = [a, b, a, a, b]                        # 3 stored-or-shared decisions: 3 pages shared
    over_bytes = run(pages)
    in_pass = run(pages, hash_input="page-in-pass")
    assert over_bytes.result()["pages_shared_small"] == in_pass.result()["pages_shared_small"] == 3
    assert in_pass.work_["bytes_hashed"] == 5 * PAGE_SIZE
    assert over_bytes.work_["bytes_hashed"] == 3 * clen(a) + 2 * clen(b)


# ---- the equal case and the predetermined size -------------------------------------------------------
def test_a_page_exactly_the_predetermined_size_goes_where_the_equal_reading_sends_it():
    p = prefix_page(2500)
    n = clen(p)
    assert 2048 < n < 3072
    larger = run([p, p], predetermined_size=n, equal="larger")
    assert larger.result()["pages_shared_large"] == 1 and larger.result()["pages_shared_small"] == 0
    assert larger.mm_stat_["huge_pages"] == 1 and larger.saved_bytes_ == PAGE_SIZE   # stored uncompressed
    smaller = run([p, p], predetermined_size=n, equal="smaller")
    assert smaller.result()["pages_shared_small"] == 1 and smaller.result()["pages_shared_large"] == 0
    assert smaller.mm_stat_["huge_pages"] == 0 and smaller.mm_stat_["compr_data_size"] == n
    assert smaller.saved_bytes_ == n
    for equal in ("larger", "smaller"):           # one byte either side, the equal reading does not matter
        assert run([p, p], predetermined_size=n + 1, equal=equal).result()["pages_shared_small"] == 1
        assert run([p, p], predetermined_size=n - 1, equal=equal).result()["pages_shared_large"] == 1
    assert "equal=smaller" in smaller.result()["variant"] and smaller.result()["construction"]["equal"] == "smaller"


def test_which_predetermined_size():
    p = prefix_page(2500)
    assert 2048 < clen(p) < 3072
    for size, branch in (("huge-threshold", "small"), ("three-quarter-page", "small"), ("half-page", "large"),
                         (2000, "large"), (3000, "small")):
        r = run([p, p], predetermined_size=size).result()
        assert r[f"pages_shared_{branch}"] == 1, size
        assert r["construction"]["predetermined-size"] == size
    assert run([p], predetermined_size="three-quarter-page").result()["predetermined_size_bytes"] == 3072
    assert run([p], predetermined_size="half-page").result()["predetermined_size_bytes"] == 2048


# ---- the mapping ------------------------------------------------------------------------------------
def test_pte_swap_entry_points_both_ptes_at_one_slot():
    m = make("patent_claim1", algo=ALGO, mapping="pte-swap-entry")
    m.run(Workload(PageSet.from_pages([TEXT, TEXT])))
    (mm0, va0), (mm1, va1) = m.where_
    s0, s1 = mm0.ptes[va0].swp, mm1.ptes[va1].swp
    assert s0 == s1 and m.swapdev.swap_map[s0] == 2
    assert m.device.mm_stat()["orig_data_size"] == PAGE_SIZE
    assert m.saved_bytes_ == clen(TEXT) and m.metadata_bytes_ == 40


def test_slot_remap_gives_each_pte_its_own_slot_on_one_handle():
    m = make("patent_claim1", algo=ALGO, mapping="slot-remap")
    m.run(Workload(PageSet.from_pages([TEXT, TEXT, TEXT])))
    slots = [mm.ptes[va].swp for mm, va in m.where_]
    assert len(set(slots)) == 3 and all(m.swapdev.swap_map[s] == 1 for s in slots)
    dev = m.device
    assert len({dev.handle[s] for s in slots}) == 1 and dev.pool.live_handles() == 1
    st = dev.mm_stat()
    assert st["orig_data_size"] == 3 * PAGE_SIZE and st["compr_data_size"] == clen(TEXT)   # one object, counted once
    assert m.pages_merged_ == 2 and m.saved_bytes_ == 2 * clen(TEXT)
    assert m.metadata_bytes_ == 40 + 8 and m.verified_readback_
    # faulting the first page (the one that stored it) back in keeps the shared object for the others
    mm, va = m.where_[0]
    assert mm.read(va) == TEXT and dev.pool.live_handles() == 1
    for mm, va in m.where_[1:]:
        assert mm.read(va) == TEXT
    assert dev.pool.live_handles() == 0 and sum(m.swapdev.swap_map) == 0


def test_pte_frame_keeps_one_resident_frame_mapped_twice():
    other = TEXT[::-1]
    m = make("patent_claim1", algo=ALGO, mapping="pte-frame")
    m.run(Workload(PageSet.from_pages([TEXT, other, TEXT])))
    (mm0, va0), (mm1, va1), (mm2, va2) = m.where_
    f = mm0.ptes[va0].frame
    assert f is not None and f == mm2.ptes[va2].frame and f.mapcount == 2
    assert not mm0.ptes[va0].writable and not mm2.ptes[va2].writable
    assert mm1.ptes[va1].frame is None and mm1.ptes[va1].swp is not None     # the unique page is swapped
    dev = m.device
    assert dev.pool.live_handles() == 1 and dev.mm_stat()["orig_data_size"] == PAGE_SIZE
    assert m.pages_merged_ == 1
    assert m.saved_bytes_ == 2 * clen(TEXT)                  # neither copy is in the store
    assert m.metadata_bytes_ == 2 * 40 + PAGE_SIZE           # ... but a whole frame stays resident
    assert m.verified_readback_
    m.write(mm2, va2, b"X")                                  # copy on write: the other mapper keeps its bytes
    assert mm2.ptes[va2].frame != f and f.mapcount == 1
    assert peek(m.machine, mm0, va0) == TEXT and peek(m.machine, mm2, va2) == b"X" + TEXT[1:]


def test_second_space_changes_the_accounting_not_the_decisions():
    pool = run([TEXT, TEXT]).result()
    device = run([TEXT, TEXT], second_space="separate-device").result()
    assert pool["pages_merged"] == device["pages_merged"] == 1
    assert pool["accounting"]["ram_net_saved_bytes"] == clen(TEXT) - 40
    assert device["accounting"]["ram_net_saved_bytes"] == -40
    assert device["accounting"]["second_space_saved_bytes"] == clen(TEXT)


@pytest.mark.parametrize("mapping", ["slot-remap", "pte-frame"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_mappings_never_lose_data(mapping, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 3)))
    rand = rng.integers(0, 256, PAGE_SIZE, dtype=np.uint8).tobytes()
    pages = [TEXT, rand, TEXT, prefix_page(3000), rand, TEXT, prefix_page(3000), bytes(PAGE_SIZE)] * 2
    m = make("patent_claim1", algo=ALGO, mapping=mapping, predetermined_size=data.draw(st.sampled_from([None, 2048])))
    machine, mms, where = m.setup(Workload(PageSet.from_pages(pages)))
    ops = data.draw(st.lists(st.tuples(st.sampled_from(["swapout", "fault", "write", "zap"]),
                                       st.integers(0, len(pages) - 1), st.integers(0, 255)), max_size=30))
    for op, i, v in ops:
        mm, va = where[i]
        if op == "swapout":
            machine.swap.swap_out([where[j] for j in range(i, min(len(pages), i + 6))])
        elif op == "fault":
            assert mm.read(va) == m.expected_[(mm.pid, va)]
        elif op == "write":
            m.write(mm, va + v * 8, bytes([v]) * 8)
        else:
            mm.zap(va)
            m.expected_[(mm.pid, va)] = bytes(PAGE_SIZE)
    machine.swap.swap_out(list(where))
    for mm, va in where:
        assert peek(machine, mm, va) == m.expected_[(mm.pid, va)]
    for mm, va in where:
        assert mm.read(va) == m.expected_[(mm.pid, va)]
    assert sum(machine.swap.swap_map) == 0 and m.device.pool.total_pages() == 0


# ---- identity ---------------------------------------------------------------------------------------
def test_hash_only_under_a_colliding_hash_loses_data_and_construe_says_so():
    a, b = TEXT, TEXT[::-1]
    ps = PageSet.from_pages([a, b])
    spec = [{"id": "identity", "default": "full",
             "alternatives": [{"id": "full", "params": {"identity": "full"}},
                              {"id": "hash-only", "params": {"identity": "hash-only"}}]}]
    out = construe_runs(Workload(ps), spec, base_params={"hash": "weak", "algo": ALGO})
    full, hash_only = out["constructions"][0]["alternatives"]
    assert full["verified_readback"] and full["pages_shared_small"] == 0
    assert not hash_only["verified_readback"] and hash_only["pages_shared_small"] == 1
    assert hash_only["differs_from_default"] == 1
    assert hash_only["examples"][0] == {"page": 1, "default": {"branch": "small", "action": "stored"},
                                        "this": {"branch": "small", "action": "shared", "with_page": 0}}


def test_decisions_are_compared_page_by_page():
    r = incompressible()
    ps = PageSet.from_pages([TEXT, r, TEXT, r, r])
    spec = [{"id": "large-branch", "default": "compressed",
             "alternatives": [{"id": a, "params": {"large_branch": a}} for a in ("compressed", "raw", "literal")]}]
    out = construe_runs(Workload(ps), spec, [{"id": "literal+in-pass", "params": {"large_branch": "literal",
                                                                                  "hash_input": "page-in-pass"}}],
                        base_params={"algo": ALGO})
    comp, raw, literal = out["constructions"][0]["alternatives"]
    assert comp["default"] and comp["differs_from_default"] == 0 and raw["differs_from_default"] == 0
    assert (comp["pages_shared_small"], comp["pages_shared_large"]) == (1, 2)
    assert (literal["pages_shared_small"], literal["pages_shared_large"]) == (1, 0)
    assert literal["differs_from_default"] == 2                     # pages 3 and 4: stored instead of shared
    assert literal["differences"] == {"shared (large) -> stored (large)": 2}
    assert [e["page"] for e in literal["examples"]] == [3, 4]
    assert literal["examples"][0]["default"] == {"branch": "large", "action": "shared", "with_page": 1}
    assert out["grid"][0]["differs_from_default"] == 0 and out["grid"][0]["pages_shared_large"] == 2
    assert out["runs"] == 4                                         # the default alternative is not run twice


# ---- the constructions data and its validator -----------------------------------------------------
def test_bundled_constructions_are_consistent():
    from claims.constructions import check_constructions, load_constructions
    assert check_constructions("US9977598") == []
    cset = load_constructions("US9977598")
    ids = {c.id for c in cset.constructions}
    assert {"large-branch", "hash-input", "equal", "predetermined-size", "mapping", "second-space", "identity"} <= ids


def _write_variant(tmp_path, edit):
    import yaml
    from claims.constructions import constructions_path
    data = yaml.safe_load(constructions_path("US9977598").read_text())
    edit(data)
    p = tmp_path / "constructions.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


@pytest.mark.parametrize("edit,expect", [
    (lambda d: d["constructions"][0]["construes"][0].update(element="1[z]"), "does not have"),
    (lambda d: d["constructions"][1]["construes"][0].update(words="a second hash value of the page"), "do not occur"),
    (lambda d: d["constructions"][4]["alternatives"][1]["params"].update(mapping="pte-teleport"), "pte-teleport"),
    (lambda d: d["constructions"][2]["alternatives"][0]["params"].update(colour="blue"), "no parameter 'colour'"),
    (lambda d: d["constructions"][3]["alternatives"][2]["params"].update(predetermined_size=0), "not 1 to"),
    (lambda d: d["constructions"][2].update(default="both"), "default 'both'"),
    (lambda d: d["constructions"][5]["alternatives"][1].update(statement="The correct reading of the words."),
     "which reading"),
    (lambda d: d["constructions"][5].update(notes="Under this reading zram infringes."), "legal conclusion"),
    (lambda d: d.update(mechanism="no_such_mechanism"), "not one of the engine's"),
])
def test_the_validator_refuses(tmp_path, edit, expect):
    from claims.constructions import check_constructions
    p = _write_variant(tmp_path, edit)
    problems = check_constructions("US9977598", path=p)
    assert any(expect in x for x in problems), problems
    assert all(x.startswith(str(p)) for x in problems)


def test_a_malformed_constructions_file_is_one_line_naming_it(tmp_path):
    from claims.constructions import check_constructions, load_constructions
    p = tmp_path / "c.yaml"
    p.write_text("patent: US9977598\nconstructions: [\n")
    with pytest.raises(InputError, match=str(p)):
        load_constructions(p)
    p.write_text('patent: "US9977598"\nmechanism: "patent_claim1"\nconstructions:\n  - id: yes\n')
    with pytest.raises(InputError) as e:
        check_constructions("US9977598", path=p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


# ---- on real memory, and the command line -----------------------------------------------------------
@pytest.fixture(scope="module")
def construe_json():
    import contextlib
    import io
    from pagemerge.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["construe", "US9977598", "--json", "--grid", "predetermined-size=half-page,large-branch=literal"])
    return rc, json.loads(buf.getvalue())


def test_construe_on_the_embedded_default_verifies_every_reading(construe_json):
    rc, out = construe_json
    assert rc == 0
    ps = PageSet.open(default_pages_path())
    assert out["n_pages"] == len(ps) and out["pages"] == default_pages_path()
    # every page is swapped out and identity is confirmed, so every duplicate of an earlier
    # page is shared: the pages minus the distinct contents
    distinct = len({hashlib.sha256(bytes(ps.page(i))).digest() for i in range(len(ps))})
    dups = len(ps) - distinct
    seen = 0
    for c in out["constructions"]:
        for a in c["alternatives"]:
            seen += 1
            assert a["verified_readback"], (c["id"], a["id"])
            shared = a["pages_shared_small"] + a["pages_shared_large"]
            if a["id"] == "literal":
                assert a["pages_shared_large"] == 0 and shared <= dups
            else:
                assert shared == dups, (c["id"], a["id"])
    assert seen >= 17
    assert out["grid"][0]["verified_readback"] and out["grid"][0]["pages_shared_large"] == 0


def test_construe_json_shape(construe_json):
    _rc, out = construe_json
    for c in out["constructions"]:
        assert {"id", "alternatives", "construes", "default"} <= set(c)
        assert sum(a["default"] for a in c["alternatives"]) == 1
        for a in c["alternatives"]:
            assert {"id", "pages_shared_small", "pages_shared_large", "net_saved_bytes", "verified_readback",
                    "differs_from_default"} <= set(a)
            assert isinstance(a["differs_from_default"], int) and a["construction"]
            assert ("default" if a["default"] else "") or a["variant"].startswith("construction: ")
    default = {c["id"]: c["default"] for c in out["constructions"]}
    for c in out["constructions"]:
        for a in c["alternatives"]:
            assert a["default"] == (a["id"] == default[c["id"]])
            if a["default"]:
                assert a["differs_from_default"] == 0


@pytest.mark.parametrize("argv,expect", [
    (["construe", "US9977598", "--grid", "mapping=nope"], "--grid: mapping=nope: no such alternative"),
    (["construe", "US9977598", "--grid", "colour=blue"], "--grid: no construction 'colour'"),
    (["construe", "US0000001"], "US0000001"),
    (["simulate", "all", "PAGES", "--construction", "equal"], "--construction: 'equal' is not"),
])
def test_construe_cli_refuses_bad_input_in_one_line(argv, expect, capsys):
    from pagemerge.cli import main
    argv = [default_pages_path() if x == "PAGES" else x for x in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pagemerge: ") and expect in err


def test_simulate_all_names_the_construction(capsys):
    from pagemerge.cli import main
    assert main(["simulate", "all", default_pages_path(), "--mechanisms", "patent_claim1", "--json",
                 "--construction", "large-branch=raw,equal=smaller,predetermined-size=3000"]) == 0
    r = json.loads(capsys.readouterr().out)["mechanisms"]["patent_claim1"]
    assert r["construction"]["large-branch"] == "raw" and r["construction"]["equal"] == "smaller"
    assert r["construction"]["predetermined-size"] == 3000
    assert "large-branch=raw" in r["variant"] and "predetermined-size=3000 B" in r["variant"]


def test_the_report_has_a_table_per_construction(tmp_path):
    import re
    from claims.constructions import load_constructions
    from reports.build import ReportInputs, build_report
    r = incompressible(5)
    ps = PageSet.from_pages([TEXT, r, TEXT, prefix_page(2500), r, prefix_page(2500), TEXT[::-1]], "hand-made")
    html = build_report(ReportInputs(pages=ps, manifest=None, source="hand-made"), out_dir=tmp_path).read_text()
    i = html.index('<section id="constructions">')
    section = html[i:html.index("</section>", i)]
    cset = load_constructions("US9977598")
    for c in cset.constructions:
        table = re.search(rf'<table class="construction" data-construction="{c.id}">(.*?)</table>', section, re.S)
        assert table, c.id
        rows = re.findall(r'<tr data-alternative="([^"]+)">', table.group(1))
        assert rows == [a.id for a in c.alternatives]
        assert table.group(1).count("verified") == len(rows) and "FAILED" not in table.group(1)
    # pages 3 and 5 compress to between half a page and the huge threshold: under half-page the
    # pair goes down the larger branch, where the literal reading finds nothing
    grid = section[section.index('id="construction-grid"'):]
    lit = re.search(r"large-branch=literal,predetermined-size=half-page</td><td class=\"num\">(\d+)</td>"
                    r"<td class=\"num\">(\d+)</td>", grid)
    assert lit and lit.group(2) == "0"
    comp = re.search(r"large-branch=compressed,predetermined-size=half-page</td><td class=\"num\">(\d+)</td>"
                     r"<td class=\"num\">(\d+)</td>", grid)
    assert comp and comp.group(2) == "2"           # the 2500-byte pair and the incompressible pair
    assert not re.search(r"\b(infring\w*|anticipat\w*|correct reading|right reading)\b", section.replace(
        "They do not say which reading is right", ""), re.I)


# ---- combine under a chosen reading ----------------------------------------------------------------
def test_combine_under_a_construction_changes_decisions_as_worked_out_by_hand():
    from engine.mechanisms.combine import compare_with_claim, summary_line
    from tests.test_combine import boundary_page
    # kernel-lz4 length 3073: zram 3.14 stores it whole (clen > 3072); the claim, its size set to
    # zram's (3073), sends a page exactly that size to the larger branch by default, to the smaller
    # one under equal=smaller: both pages of the pair change branch, nothing else changes
    p73 = boundary_page("kernel-lz4", 3073)
    ps = PageSet.from_pages([p73, p73], "edge")
    base = compare_with_claim("esx_2002", "zram_3_14", ps, algo="kernel-lz4")
    assert base["same_decisions"] == 2 and base["reading"] == {}
    r = compare_with_claim("esx_2002", "zram_3_14", ps, algo="kernel-lz4", construction={"equal": "smaller"})
    assert (r["same_decisions"], r["different_decisions"]) == (0, 2)
    assert r["differences_by_reason"] == {"different size branch": 2}
    assert r["claimed"]["construction"]["equal"] == "smaller" and r["reading"] == {"equal": "smaller"}
    assert r["claimed"]["predetermined_size"] == 3073 and "under the reading equal=smaller" in summary_line(r)
    # an incompressible pair goes whole on both sides; the literal reading of the larger branch
    # compares a hash of compressed bytes with hashes of raw pages and so stores the second copy
    R = incompressible(3)
    ps = PageSet.from_pages([R, R], "rand")
    assert compare_with_claim("ksm_2_6_32", "zram_3_14", ps)["same_decisions"] == 2
    r = compare_with_claim("ksm_2_6_32", "zram_3_14", ps, construction={"large_branch": "literal"})
    assert (r["same_decisions"], r["differences_by_reason"]) == (1, {"shared by the combination only": 1})
    assert r["claimed"]["pages_shared"] == 0 and r["combination"]["pages_shared"] == 1
    # a size the reading chooses replaces zram's: a 2500-byte-ish pair is small for zram 3.14, large at half a page
    p = prefix_page(2500)
    ps = PageSet.from_pages([p, p], "prefix")
    r = compare_with_claim("ksm_2_6_32", "zram_3_14", ps, construction={"predetermined_size": "half-page"})
    assert r["claimed"]["predetermined_size"] == 2048
    assert r["differences_by_reason"] == {"different size branch": 2}
    # the mapping changes what is repointed, not which page is shared with which
    T = PageSet.from_pages([TEXT, TEXT, R, R], "mixed")
    for m in ("slot-remap", "pte-frame"):
        r = compare_with_claim("ksm_2_6_32", "zram_3_14", T, construction={"mapping": m})
        assert r["same_decisions"] == 4 and r["claimed"]["verified_readback"], m


def test_combine_cli_takes_a_construction(tmp_path, capsys):
    from pagemerge.cli import main
    R = incompressible(3)
    path = tmp_path / "pages.bin"
    path.write_bytes(R + R + TEXT)
    assert main(["combine", "ksm_2_6_32", "zram_3_14", str(path), "--json",
                 "--construction", "large-branch=literal"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["reading"] == {"large-branch": "literal"} and r["claimed"]["construction"]["large-branch"] == "literal"
    assert r["different_decisions"] == 1
    assert main(["combine", "ksm_2_6_32", "zram_3_14", str(path), "--construction", "mapping=teleport"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--construction: mapping=teleport: no such alternative" in err


def test_construe_names_the_analysis_cells_that_turn_on_each_construction(construe_json):
    import yaml
    from claims.store import DATA
    _rc, out = construe_json
    chart = yaml.safe_load((DATA / "US9977598" / "chart.yaml").read_text())
    pa = yaml.safe_load((DATA / "US9977598" / "prior_art.yaml").read_text())
    want = {}
    for analysis, subj, cells in (("designs", "mechanism", chart["rows"]), ("prior_art", "reference", pa["cells"])):
        for c in cells:
            for cid, per in c.get("by_construction", {}).items():
                want.setdefault(cid, set()).add((analysis, c["element"], c[subj], c["status"], tuple(per.items())))
    got = {c["id"]: {(x["analysis"], x["element"], x["subject"], x["status"], tuple(x["statuses"].items()))
                     for x in c["cells"]} for c in out["constructions"] if c["cells"]}
    assert got == want and {"mapping", "large-branch", "equal", "predetermined-size"} <= set(got)
