"""The two analyses (prior art, designs) and the strict ``claims check``.

Each strict rule is shown to fire on a mutated copy of the bundled data (one test per rule)
and to stay silent on the bundled data itself; claim statuses are derived on hand-made cases;
reviewer edits survive regeneration; the reference list is checked against the analyses with
dates and counts computed here, independently of the checker.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from claims.analysis import aggregate, analyses, claim_statuses, load_prior_art
from claims.chart import check_chart, check_strict
from claims.model import ClaimChartBundle, Patent, PriorityClaim
from claims.parse import parse_claim
from claims.store import DATA, load_bundle

PRIORITY = dt.date(2014, 10, 27)      # US provisional 62/068,808, as printed on the patent
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data(tmp_path):
    """A private copy of the bundled US 9,977,598 data to mutate."""
    dst = tmp_path / "US9977598"
    shutil.copytree(DATA / "US9977598", dst)
    return dst


def problems(d: Path) -> list[str]:
    b = load_bundle(chart_path=d / "chart.yaml", overlay=False)
    return check_chart(b, where=str(d / "chart.yaml"))


def edit(path: Path, fn):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")


def pa_cell(doc, element, reference):
    return next(c for c in doc["cells"] if c["element"] == element and c["reference"] == reference)


def row(doc, element, mechanism):
    return next(r for r in doc["rows"] if r["element"] == element and r["mechanism"] == mechanism)


# ---- the bundled data -------------------------------------------------------------------------------
def test_bundled_charts_pass_the_strict_check():
    b = load_bundle(overlay=False)
    assert check_chart(b, where=str(DATA / "US9977598" / "chart.yaml")) == []
    assert check_strict(b) == []


def test_unmutated_copy_passes(data):
    assert problems(data) == []


def test_every_reference_is_cited_somewhere():
    refs = yaml.safe_load((DATA / "US9977598" / "references.yaml").read_text())
    chart = yaml.safe_load((DATA / "US9977598" / "chart.yaml").read_text())
    pa = yaml.safe_load((DATA / "US9977598" / "prior_art.yaml").read_text())
    cited = {c["reference"] for r in chart["rows"] for c in r["evidence"]["citations"]}
    cited |= {c["reference"] for cell in pa["cells"] for c in cell["citations"]}
    assert {r["id"] for r in refs} <= cited


def test_every_prior_art_reference_predates_the_priority_date():
    refs = {r["id"]: r for r in yaml.safe_load((DATA / "US9977598" / "references.yaml").read_text())}
    pa = yaml.safe_load((DATA / "US9977598" / "prior_art.yaml").read_text())
    assert len(pa["references"]) >= 10
    for rid in pa["references"]:
        parts = [int(x) for x in refs[rid]["date"].split("-")]
        # the last day the date can mean must be before 2014-10-27
        last = dt.date(parts[0], 12, 31) if len(parts) == 1 else (
            dt.date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1) - dt.timedelta(days=1)) if len(parts) == 2 \
            else dt.date(*parts)
        assert last < PRIORITY, rid
        for cell in pa["cells"]:
            for c in cell["citations"]:
                d = refs[c["reference"]]["date"]
                assert d < "2014-10-27", (cell["element"], cell["reference"], c["reference"], d)


def test_every_cell_has_a_pinpointed_citation_and_the_matrix_is_complete():
    pa = yaml.safe_load((DATA / "US9977598" / "prior_art.yaml").read_text())
    chart = yaml.safe_load((DATA / "US9977598" / "chart.yaml").read_text())
    elements = ["1[pre]", "1[a]", "1[b]", "1[c]", "1[d]", "1[e]", "1[f]", "2[a]"]
    assert {(c["element"], c["reference"]) for c in pa["cells"]} == {(e, r) for e in elements for r in pa["references"]}
    assert {(r["element"], r["mechanism"]) for r in chart["rows"]} == {(e, m) for e in elements for m in chart["mechanisms"]}
    for c in pa["cells"]:
        assert c["citations"] and all(x["pinpoint"].strip() for x in c["citations"])
    for r in chart["rows"]:
        assert r["evidence"]["citations"] and all(x["pinpoint"].strip() for x in r["evidence"]["citations"])
    # the designs the issue names are all columns
    assert {"zram_dedup", "zram_merge", "zsmalloc_fold", "ksm", "upstream_zram"} <= set(chart["mechanisms"])


def test_stored_texts_are_short_excerpts():
    for p in (DATA / "US9977598" / "sources").glob("*.txt"):
        text = p.read_text(encoding="utf-8")
        assert len(text) < 4000, p
        blocks = text.split("\n@@ ")[1:]
        assert blocks and all(len(b.splitlines()) <= 15 for b in blocks), p


# ---- one test per strict rule, on a mutated copy -------------------------------------------------------
def test_citation_without_pinpoint(data):
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[b]", "zram-3.14")["citations"][0].update(pinpoint=""))
    assert any("1[b] x zram-3.14" in p and "has no pinpoint" in p for p in problems(data))


def test_pinpoint_that_names_no_place(data):
    edit(data / "chart.yaml", lambda d: row(d, "1[b]", "zram_dedup")["evidence"]["citations"][0].update(
        pinpoint="drivers/block/zram/zram_dedup.c"))
    assert any("1[b] x zram_dedup" in p and "names no line" in p for p in problems(data))


def test_quote_not_in_stored_text(data):
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[e]", "zram-3.14")["citations"][0].update(
        quote="if (unlikely(clen >= max_zpage_size)) {"))
    assert any("1[e] x zram-3.14" in p and "not in the stored text" in p for p in problems(data))


def test_quote_at_the_wrong_pinpoint(data):
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[b]", "ksm-linux-2.6.32")["citations"][0].update(
        pinpoint="v2.6.32.2 mm/ksm.c:1092"))
    assert any("1[b] x ksm-linux-2.6.32" in p and "not at the pinpoint" in p for p in problems(data))


def test_evidence_filter_with_a_field_the_event_does_not_have(data):
    edit(data / "chart.yaml", lambda d: row(d, "1[b]", "upstream_zram")["evidence"]["events"][0]["where"].update(
        colour="red"))
    assert any("1[b] x upstream_zram" in p and "'colour' is not a field of zram.compressed" in p for p in problems(data))


def test_evidence_filter_naming_an_unknown_mechanism(data):
    edit(data / "chart.yaml", lambda d: row(d, "1[c]", "zram_merge")["evidence"]["events"][0]["where"].update(
        mechanism="zram_dedupe"))
    assert any("1[c] x zram_merge" in p and "no such mechanism" in p for p in problems(data))


def test_evidence_filter_value_that_cannot_occur_in_that_run(data):
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "2[a]", "vmware-esx-2002")["events"][0]["where"].update(
        mechanism="ksm_2_6_32"))
    edit(data / "chart.yaml", lambda d: row(d, "1[d]", "zram_dedup")["evidence"]["events"][0]["where"].update(
        link="slot -> object"))
    ps = problems(data)
    assert any("2[a] x vmware-esx-2002" in p and "cannot occur in a run of 'esx_2002'" in p for p in ps)
    assert any("1[d] x zram_dedup" in p and "link='slot -> object' cannot occur" in p for p in ps)


def test_code_reference_to_a_missing_file_or_symbol(data):
    def mutate(d):
        row(d, "1[a]", "upstream_zram")["evidence"]["code"][0]["ref"] = "engine/swapping.py:select_candidates"
        row(d, "1[a]", "zram_dedup")["evidence"]["code"][0]["ref"] = "engine/swap.py:select_candidate"
        row(d, "1[a]", "zram_merge")["evidence"]["code"][0]["ref"] = "kernel: mm/vmscan.c shrink_folio_list()"
    edit(data / "chart.yaml", mutate)
    ps = problems(data)
    assert any("1[a] x upstream_zram" in p and "no file engine/swapping.py" in p for p in ps)
    assert any("1[a] x zram_dedup" in p and "defines no select_candidate" in p for p in ps)
    assert any("1[a] x zram_merge" in p and "not a file of the checkout" in p for p in ps)


def test_identical_reasoning_copied_across_cells(data):
    def mutate(d):
        row(d, "1[pre]", "zram_merge")["reasoning"] = "  " + row(d, "1[pre]", "zram_dedup")["reasoning"].upper()
    edit(data / "chart.yaml", mutate)
    assert any("1[pre] x zram_merge" in p and "identical to" in p and "1[pre] x zram_dedup" in p for p in problems(data))


def test_prior_art_row_citing_a_later_reference(data):
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[c]", "zram-3.14")["citations"].append(
        {"reference": "romanov-merge-2022", "pinpoint": "Message-ID 20221121190020.66548-1-avromanov@sberdevices.ru"}))
    assert any("1[c] x zram-3.14" in p and "romanov-merge-2022 dated 2022-11-21, on or after the priority date" in p
               for p in problems(data))


def test_prior_art_column_dated_after_the_priority_date(data):
    def mutate(d):
        d[[r["id"] for r in d].index("zram-3.14")]["date"] = "2014-10-27"
    refs = data / "references.yaml"
    doc = yaml.safe_load(refs.read_text())
    mutate(doc)
    refs.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    ps = problems(data)
    assert any("reference zram-3.14 dated 2014-10-27 is not before the priority date" in p for p in ps)


@pytest.mark.parametrize("text", [
    "upstream zram reads on claim 1", "it practices the patented method", "the patent is unenforceable here",
    "this would have been obvious", "KSM anticipates the element", "the design infringes", "a question of validity",
    "the claim is invalid", "non-infringing alternative", "obviousness over ESX"])
def test_reasoning_stating_a_legal_conclusion(data, text):
    edit(data / "chart.yaml", lambda d: row(d, "1[c]", "ksm").update(reasoning=text))
    assert any("1[c] x ksm" in p and "states a legal conclusion" in p for p in problems(data))


def test_technical_words_are_not_taken_for_legal_ones(data):
    edit(data / "chart.yaml", lambda d: row(d, "1[c]", "ksm").update(
        reasoning="The page is read on demand; a valid handle is kept; KSM compares raw pages."))
    assert not any("1[c] x ksm" in p for p in problems(data))


def test_partial_status_must_name_its_parts_and_follow_from_them(data):
    def mutate(d):
        row(d, "1[b]", "upstream_zram").pop("parts")
        row(d, "1[c]", "zram_dedup")["parts"]["1[c.2]"] = "absent"     # absent, absent, present, absent: partial still
        row(d, "1[e]", "zram_merge")["parts"] = {"1[e.1]": "present", "1[e.2]": "present", "1[e.3]": "present",
                                                 "1[e.4]": "present"}   # all present, yet status partial
    edit(data / "chart.yaml", mutate)
    ps = problems(data)
    assert any("1[b] x upstream_zram" in p and "must name which sub-limitations hold" in p for p in ps)
    assert any("1[e] x zram_merge" in p and "does not follow from its parts" in p for p in ps)
    assert not any("1[c] x zram_dedup" in p for p in ps)


def test_uncited_reference(data):
    refs = data / "references.yaml"
    doc = yaml.safe_load(refs.read_text())
    doc.append({"id": "zsmalloc-3.3", "title": "zsmalloc in drivers/staging, Linux 3.3", "date": "2012-03-18",
                "date_kind": "release", "role": "context"})
    refs.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    assert any("reference zsmalloc-3.3 is cited by no row" in p for p in problems(data))


def test_missing_cell_breaks_the_all_elements_rule(data):
    edit(data / "prior_art.yaml", lambda d: d["cells"].remove(pa_cell(d, "1[f]", "satori-2009")))
    assert any("claim element 1[f] has no cell for reference satori-2009" in p for p in problems(data))


def test_claims_check_command_exits_1_with_one_line_per_problem(data, capsys):
    from pagemerge.cli import main
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[b]", "zram-3.14")["citations"][0].update(pinpoint=""))
    rc = main(["claims", "check", str(data / "chart.yaml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert any("has no pinpoint" in line for line in err)
    assert err[-1].startswith("pagemerge: ") and "1 problem(s)" in err[-1]


# ---- derived statuses ---------------------------------------------------------------------------------
def _bundle(*texts) -> ClaimChartBundle:
    claims = [parse_claim(i + 1, t) for i, t in enumerate(texts)]
    pat = Patent(number="US1234567", kind="B1", filing_date=dt.date(2015, 1, 1),
                 priority_claims=[PriorityClaim(kind="US provisional", number="1", date=dt.date(2014, 1, 1))])
    return ClaimChartBundle(patent=pat, claims=claims, references=[])


def test_dependent_claim_status_follows_from_its_parent():
    b = _bundle("A method comprising: hashing a page; and comparing the page.",
                "The method as claimed in claim 1, further comprising keeping a table.",
                "The method as claimed in claim 2, further comprising sorting the table.")
    els = {c.number: [e.id for e in c.charted_elements()] for c in b.claims}
    assert els[2] == ["2[a]"] and els[3] == ["3[a]"]
    one, two = els[1][-2:]
    cells = {(one, "X"): "disclosed", (two, "X"): "partly disclosed", ("2[a]", "X"): "disclosed",
             ("3[a]", "X"): "disclosed",
             (one, "Y"): "disclosed", (two, "Y"): "disclosed", ("2[a]", "Y"): "not disclosed",
             ("3[a]", "Y"): "disclosed"}
    for e in els[1][:-2]:
        cells[(e, "X")] = cells[(e, "Y")] = "disclosed"
    got = {(r["claim"], r["subject"]): r for r in claim_statuses(b, cells, ["X", "Y"], "prior-art")}
    # X: claim 1 is partly disclosed (one element partly); claims 2 and 3 inherit it though their own
    # elements are disclosed
    assert got[(1, "X")]["status"] == "partly disclosed" and got[(1, "X")]["limited_by"] == [two]
    assert got[(2, "X")]["own"] == "disclosed" and got[(2, "X")]["status"] == "partly disclosed"
    assert got[(2, "X")]["limited_by"] == ["claim 1"]
    assert got[(3, "X")]["status"] == "partly disclosed"
    # Y: claim 1 fully disclosed; claim 2's own element is not, and claim 3 inherits that
    assert got[(1, "Y")]["status"] == "disclosed"
    assert got[(2, "Y")]["status"] == "not disclosed" and got[(2, "Y")]["limited_by"] == ["2[a]"]
    assert got[(3, "Y")]["status"] == "not disclosed" and got[(3, "Y")]["limited_by"] == ["claim 2"]
    # an element with no cell is undetermined, and so is a claim that needs it
    del cells[("3[a]", "Y")]
    got = {(r["claim"], r["subject"]): r for r in claim_statuses(b, cells, ["Y"], "prior-art")}
    assert got[(3, "Y")]["own"] == "undetermined" and got[(3, "Y")]["status"] == "not disclosed"


@pytest.mark.parametrize("parts,kind,want", [
    (["disclosed", "disclosed"], "prior-art", "disclosed"),
    (["not disclosed", "not disclosed"], "prior-art", "not disclosed"),
    (["disclosed", "not disclosed"], "prior-art", "partly disclosed"),
    (["disclosed", "undetermined"], "prior-art", "undetermined"),
    (["not disclosed", "undetermined"], "prior-art", "undetermined"),
    (["partly disclosed", "disclosed"], "prior-art", "partly disclosed"),
    (["present", "absent", "undetermined"], "designs", "partial"),
    (["present", "present"], "designs", "present"),
])
def test_parts_aggregate(parts, kind, want):
    assert aggregate(parts, kind) == want


def test_bundled_claim_2_status_is_computed_not_typed():
    for name in ("chart.yaml", "prior_art.yaml"):
        text = (DATA / "US9977598" / name).read_text()
        assert "claim_status" not in text and '"2": ' not in text
    out = analyses(load_bundle(overlay=False))
    pa = {(r["claim"], r["subject"]): r for r in out["prior_art"]["claims"]}
    de = {(r["claim"], r["subject"]): r for r in out["designs"]["claims"]}
    cells = {(c["element"], c["mechanism"]): c["status"] for c in out["designs"]["cells"]}
    # zram_dedup keeps a structure for its comparison (2[a] present) but claim 1's comparisons
    # are partial, so claim 2 is no more than partial
    assert cells[("2[a]", "zram_dedup")] == "present"
    assert de[(2, "zram_dedup")]["status"] == de[(1, "zram_dedup")]["status"] == "partial"
    for (n, s), r in pa.items():
        if n == 2:
            assert r["parents"] == [{"claim": 1, "status": pa[(1, s)]["status"]}]


# ---- show --json --------------------------------------------------------------------------------------
def test_show_json_has_both_analyses():
    from pagemerge.cli import main
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["claims", "show", "--json"]) == 0
    d = json.loads(buf.getvalue())
    pa, de = d["prior_art"], d["designs"]
    assert [r["id"] for r in pa["references"]] == load_prior_art(load_bundle()).references
    cell = next(c for c in pa["cells"] if c["element"] == "1[b]" and c["reference"] == "ksm-linux-2.6.32")
    assert cell["model"] == "ksm_2_6_32" and cell["citations"][0]["quote"] == "checksum = jhash2(addr, PAGE_SIZE / 4, 17);"
    assert pa["combinations"] and all(c["flag"].startswith("candidate for review") for c in pa["combinations"])
    pod = de["points_of_difference"]
    assert set(pod) == {"upstream_zram", "zram_dedup", "zram_merge", "zsmalloc_fold", "ksm"}
    b = next(x for x in pod["zram_dedup"] if x["element"] == "1[b]")
    assert b["lacking"] == ["1[b.2]"] and b["holding"] == ["1[b.1]"] and "uncompressed" in b["difference"]


# ---- reviewer workflow -----------------------------------------------------------------------------------
def _chart_source():
    spec = importlib.util.spec_from_file_location("chart_source", ROOT / "scripts" / "chart_source.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reviewer_fields_survive_regeneration(data, capsys):
    def mutate_chart(d):
        r = row(d, "1[c]", "zram_dedup")        # reviewed, with an edited reasoning
        r.update(reviewer_status="reviewed", reviewer="A. Reviewer", reviewed_on="2026-11-30",
                 reasoning="Edited by the reviewer: the checksum is of the raw page.", review_comment="checked 3/4")
        r2 = row(d, "1[d]", "ksm")              # still a draft, with a comment
        r2.update(review_comment="ask about PTE wording", reasoning="stale draft text")
        r3 = row(d, "1[e]", "zram_merge")       # disputed
        r3.update(reviewer_status="disputed", reviewer="B. Other", reviewed_on="2026-12-01", status="absent",
                  parts={"1[e.1]": "absent", "1[e.2]": "absent", "1[e.3]": "absent", "1[e.4]": "absent"},
                  review_comment="huge slots only")
    edit(data / "chart.yaml", mutate_chart)
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[e]", "zram-3.14").update(
        reviewer_status="reviewed", reviewer="A. Reviewer", reviewed_on="2026-11-29"))
    _chart_source().main(["--data", str(data)])
    capsys.readouterr()
    chart = yaml.safe_load((data / "chart.yaml").read_text())
    r = row(chart, "1[c]", "zram_dedup")
    assert (r["reviewer_status"], r["reviewer"], r["reviewed_on"], r["review_comment"]) == \
        ("reviewed", "A. Reviewer", "2026-11-30", "checked 3/4")
    assert r["reasoning"] == "Edited by the reviewer: the checksum is of the raw page."
    r2 = row(chart, "1[d]", "ksm")
    assert r2["review_comment"] == "ask about PTE wording" and r2["reviewer_status"] == "draft"
    assert r2["reasoning"] != "stale draft text"           # drafts take the regenerated text
    r3 = row(chart, "1[e]", "zram_merge")
    assert (r3["reviewer_status"], r3["status"], r3["review_comment"]) == ("disputed", "absent", "huge slots only")
    pa = yaml.safe_load((data / "prior_art.yaml").read_text())
    c = pa_cell(pa, "1[e]", "zram-3.14")
    assert (c["reviewer_status"], c["reviewer"], str(c["reviewed_on"])) == ("reviewed", "A. Reviewer", "2026-11-29")
    assert not [p for p in problems(data) if "1[c] x zram_dedup" in p or "1[d] x ksm" in p]


def test_regenerating_the_bundled_data_changes_nothing(data, capsys):
    before = {n: (data / n).read_bytes() for n in ("chart.yaml", "prior_art.yaml")}
    _chart_source().main(["--data", str(data)])
    capsys.readouterr()
    assert {n: (data / n).read_bytes() for n in before} == before


def test_reviewed_cell_needs_a_reviewer_and_date(data):
    edit(data / "chart.yaml", lambda d: row(d, "2[a]", "ksm").update(reviewer_status="reviewed"))
    assert any("2[a] x ksm" in p and "needs a reviewer and a date" in p for p in problems(data))


def test_every_review_state_is_checked_the_same_way(data):
    """A chart cell, a prior-art cell and a combination carry the same review state, held to the
    same two rules: a reviewed or disputed status names a reviewer and a date, and the comment
    states no legal conclusion."""
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[a]", "zram-3.14").update(reviewer_status="disputed"))
    edit(data / "prior_art.yaml", lambda d: d["combinations"][0].update(
        reviewer_status="reviewed", review_comment="this combination renders claim 1 obvious"))
    comb = yaml.safe_load((data / "prior_art.yaml").read_text())["combinations"][0]["id"]
    found = problems(data)
    assert any("1[a] x zram-3.14" in p and "'disputed' needs a reviewer and a date" in p for p in found)
    assert any(f"combinations[0] ({comb})" in p and "'reviewed' needs a reviewer and a date" in p for p in found)
    assert any(f"combinations[0] ({comb})" in p and "review comment" in p for p in found)


def test_patent_term_counts_from_the_non_provisional_filing_date():
    p = load_bundle(overlay=False).patent
    t = p.term()
    # filed 2015-07-06 (US 14/791,703); the provisional of 2014-10-27 does not start the term
    assert t["nominal_end"] == "2035-07-06" and t["pta"] is None and t["end"] is None
    assert "unknown" in t["note"] and "2014" not in t["basis"]
    assert p.publication.value.startswith("US 2016/0117116 A1") and "G06F 12/00" in p.ipc
    assert any("CN105550123B" in f for f in p.family)
    leap = Patent(number="US1", kind="B1", filing_date=dt.date(2016, 2, 29), pta_days=10).term()
    assert leap["nominal_end"] == "2036-02-29" and leap["end"] == "2036-03-10"


# ---- the report ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reviewed_report(tmp_path_factory):
    """The report built on a copy of the data where one design cell is disputed and one prior-art
    cell reviewed."""
    from reports.build import build_report, default_inputs
    d = tmp_path_factory.mktemp("data") / "US9977598"
    shutil.copytree(DATA / "US9977598", d)
    edit(d / "chart.yaml", lambda doc: row(doc, "1[d]", "zram_merge").update(
        reviewer_status="disputed", reviewer="B. Other", reviewed_on="2026-12-01", review_comment="slot, not VA"))
    edit(d / "prior_art.yaml", lambda doc: pa_cell(doc, "1[e]", "zram-3.14").update(
        reviewer_status="reviewed", reviewer="A. Reviewer", reviewed_on="2026-11-29"))
    out = tmp_path_factory.mktemp("out")
    page = build_report(default_inputs(kernel=False, chart=str(d / "chart.yaml")), out_dir=out)
    return page.read_text(encoding="utf-8"), out


def _table(page, tid):
    i = page.index(f'id="{tid}"')
    return page[i:page.index("</table>", i)]


def test_report_prior_art_section(reviewed_report):
    import re
    page, out = reviewed_report
    body = _table(page, "prior-art-table")
    assert re.findall(r'<tr data-element="([^"]+)"', body) == ["1[pre]", "1[a]", "1[b]", "1[c]", "1[d]", "1[e]", "1[f]", "2[a]"]
    assert len(re.findall(r'<th data-reference="', body)) == 10
    assert len(re.findall(r'<td class="cell-[a-z-]+" data-status="', body)) == 80
    # the executable models ran on the report's memory and their events are counted
    assert "in this run of ksm_2_6_32" in body and "in this run of zram_3_14" in body
    assert "checksum = jhash2(addr, PAGE_SIZE / 4, 17);" in body
    assert 'data-review="reviewed">review: reviewed, A. Reviewer, 2026-11-29' in body
    assert 'id="combinations"' in page and "not a conclusion" in page
    comb = _table(page, "combinations")
    # the engine composes KSM 2.6.32's identity test with zram 3.14's store and runs it beside the
    # claimed method on the report's pages: evidence for the reviewer's question
    assert 'data-combine="ksm_2_6_32+zram_3_14"' in comb and "decided as the claimed method" in comb
    assert "Read-back <span class=\"ok\">verified</span>" in comb
    claims = _table(page, "prior-art-claims")
    assert '<tr data-claim="2">' in claims
    # a combination whose covered cells turn on a reading names it, and its combine ran under it
    row_ = comb[comb.index('data-combination="zram-3.14+ksm-2.6.32"'):]
    row_ = row_[:row_.index("</tr>")]
    assert 'data-readings="second-space=carved-pool"' in row_ and "under the reading second-space=carved-pool" in row_


def test_report_designs_review_state_and_differences(reviewed_report):
    page, out = reviewed_report
    body = _table(page, "chart-table")
    assert 'data-review="disputed">review: disputed, B. Other, 2026-12-01: slot, not VA' in body
    assert body.count('data-review="draft"') == 47
    pod = _table(page, "points-of-difference")
    assert "hashes the uncompressed page before compressing, not the compressed page" in pod
    assert 'data-design="patent_claim1"' not in pod


def test_report_patent_data_and_disclaimer(reviewed_report):
    page, out = reviewed_report
    assert "US 2016/0117116 A1" in page and "CN105550123B" in page and "G06F 12/00" in page
    assert "nominally ends 2035-07-06" in page and "unknown length" in page
    assert "Not legal advice." in page


def test_report_csv_exports_both_analyses(reviewed_report):
    import csv
    page, out = reviewed_report
    pa = list(csv.DictReader(open(out / "prior-art-US9977598.csv", encoding="utf-8")))
    assert len(pa) == 80
    assert all(r["citations"] and r["status"] in ("disclosed", "partly disclosed", "not disclosed", "undetermined")
               for r in pa)
    zr = next(r for r in pa if r["element"] == "1[e]" and r["reference"] == "zram-3.14")
    assert zr["reviewer_status"] == "reviewed" and zr["executable_model"] == "zram_3_14"
    assert "max_zpage_size" in zr["citations"] and zr["parts"].startswith("1[e.1]=disclosed")
    ch = list(csv.DictReader(open(out / "chart-US9977598.csv", encoding="utf-8")))
    d = next(r for r in ch if r["element"] == "1[d]" and r["mechanism"] == "zram_merge")
    assert (d["reviewer_status"], d["reviewer"], d["review_comment"]) == ("disputed", "B. Other", "slot, not VA")


def test_an_executable_models_citation_is_checked_against_the_stored_text(monkeypatch):
    from engine.mechanisms import REGISTRY
    from engine.mechanisms.base import Citation
    cls = REGISTRY["zram_3_14"]
    wrong = Citation("zram-3.14", "v3.14.1 drivers/block/zram/zram_drv.h:34", "static const size_t max_zpage_size = PAGE_SIZE / 2;")
    monkeypatch.setattr(cls, "citations", tuple(cls.citations) + (wrong,))
    ps = check_strict(load_bundle(overlay=False))
    assert any(p.startswith("engine mechanism zram_3_14: citation of zram-3.14: quote") for p in ps)


def test_imported_claims_join_both_analyses(tmp_path, monkeypatch):
    """Once a user imports more claims, their elements are in the analyses as undetermined until
    charted, their status still follows from their parents, and the strict check asks for the
    missing cells. (The claim text here is made up for the test; it is not the patent's claim 3.)"""
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path))
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "US9977598.yaml").write_text(yaml.safe_dump({"number": "US9977598", "kind": "B2", "claims": [
        {"number": 3, "text": "3. The method as claimed in claim 2, wherein the specific data structure is a tree."}]}))
    b = load_bundle()
    assert [c.number for c in b.claims if c.loaded] == [1, 2, 3]
    out = analyses(b)
    pa = {(r["claim"], r["subject"]): r for r in out["prior_art"]["claims"]}
    assert pa[(3, "ksm-linux-2.6.32")]["own"] == "undetermined"
    assert pa[(3, "ksm-linux-2.6.32")]["parents"] == [{"claim": 2, "status": pa[(2, "ksm-linux-2.6.32")]["status"]}]
    ps = check_strict(b)
    assert any("claim element 3[a] has no cell for reference zram-3.14" in p for p in ps)


def test_reference_an_engine_model_names_must_be_listed(data):
    refs = data / "references.yaml"
    doc = [r for r in yaml.safe_load(refs.read_text()) if r["id"] != "zswap-3.11"]
    refs.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    ps = problems(data)
    assert any("engine mechanism zswap_3_11 names reference 'zswap-3.11', which is not listed" in p for p in ps)
    assert any("stored text for 'zswap-3.11', which is not a listed reference" in p for p in ps)


def test_malformed_analysis_is_one_line_exit_2(data, capsys):
    from pagemerge.cli import main
    edit(data / "prior_art.yaml", lambda d: pa_cell(d, "1[a]", "zram-3.14").update(status="anticipated"))
    assert main(["claims", "check", str(data / "chart.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pagemerge: ") and "prior_art.yaml" in err[0] and "status" in err[0]
    (data / "limitations.yaml").write_text("- not a mapping\n")
    assert main(["claims", "check", str(data / "chart.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "limitations.yaml" in err[0]


def test_summary_lines_for_claims_show():
    from claims.analysis import summary_lines
    lines = summary_lines(load_bundle(overlay=False))
    assert lines[0].startswith("Prior art (before the priority date): 80 cells; review: draft 80")
    claim2 = [x for x in lines if x.startswith("  claim 2 ")]
    assert len(claim2) == 2 and "zram_dedup partial" in claim2[1]
    assert lines[-1].startswith("Candidate combinations (for review; not a conclusion)")


# ---- statuses under claim constructions ------------------------------------------------------------
def test_statuses_under_readings_are_derived_from_the_parts():
    from claims.analysis import headline_status, statuses_under_readings
    # a design cell: the mapping part turns on the reading, the other part holds (worked out by hand:
    # absent + present -> partial; present + present -> present)
    per = statuses_under_readings({"1[d.1]": "undetermined", "1[d.2]": "present"},
                                  {"1[d.1]": {"a": "absent", "b": "present", "c": "absent"}}, "designs")
    assert per == {"a": "partial", "b": "present", "c": "partial"}
    assert headline_status({"mapping": per}, "designs") == "undetermined"
    # a prior-art cell: not disclosed + disclosed -> partly disclosed; undetermined + disclosed -> undetermined
    per = statuses_under_readings({"1[f.1]": "undetermined", "1[f.2]": "disclosed"},
                                  {"1[f.1]": {"x": "not disclosed", "y": "undetermined"}}, "prior-art")
    assert per == {"x": "partly disclosed", "y": "undetermined"}
    # a cell without parts takes the element's own entry; alternatives that agree give their status
    per = statuses_under_readings({}, {"1[e]": {"p": "present", "q": "present"}}, "designs")
    assert per == {"p": "present", "q": "present"} and headline_status({"c": per}, "designs") == "present"
    assert headline_status({}, "designs") is None
    with pytest.raises(ValueError):
        statuses_under_readings({"1[e.1]": "present", "1[e.2]": "present"},
                                {"1[e.1]": {"p": "present"}, "1[e.2]": {"q": "absent"}}, "designs")
    with pytest.raises(ValueError):             # a sub-limitation of a cell that gives no parts
        statuses_under_readings({}, {"1[e.1]": {"p": "present", "q": "absent"}}, "designs")


def test_bundled_cells_turning_on_the_mapping_reading():
    """The cells the brief names, with statuses worked out from what each design repoints."""
    chart = yaml.safe_load((DATA / "US9977598" / "chart.yaml").read_text())
    pa = yaml.safe_load((DATA / "US9977598" / "prior_art.yaml").read_text())
    dedup = row(chart, "1[d]", "zram_dedup")
    # zram dedup repoints a slot to a shared handle: the slot-remap reading's link, no other
    assert dedup["by_construction"]["mapping"] == {"pte-swap-entry": "partial", "slot-remap": "present",
                                                    "pte-frame": "partial"}
    assert dedup["status"] == "undetermined"
    ksm = row(chart, "1[d]", "ksm")         # KSM points PTEs at a shared frame: only pte-frame
    assert ksm["by_construction"]["mapping"] == {"pte-swap-entry": "absent", "slot-remap": "absent",
                                                  "pte-frame": "partial"} and ksm["status"] == "undetermined"
    claim = row(chart, "1[e]", "patent_claim1")
    assert claim["by_construction"]["large-branch"]["literal"] == "undetermined"
    k32 = pa_cell(pa, "1[d]", "ksm-linux-2.6.32")
    assert k32["by_construction"]["mapping"]["pte-frame"] == "partly disclosed" and k32["status"] == "undetermined"
    z = pa_cell(pa, "1[c]", "zram-3.14")    # zram 3.14's threshold: considered, and the cell does not turn
    assert set(z["by_construction"]["predetermined-size"].values()) == {"partly disclosed"}
    assert z["status"] == "partly disclosed"
    # every cell that names a construction gives a reasoning naming each alternative
    for c in chart["rows"] + pa["cells"]:
        for cid, per in c.get("by_construction", {}).items():
            assert all(a in c["construction_reasoning"][cid] for a in per), (c["element"], cid)


def _reading_problems(data, mutate, where="chart.yaml"):
    edit(data / where, mutate)
    return problems(data)


def test_reading_naming_an_unknown_construction(data):
    ps = _reading_problems(data, lambda d: row(d, "1[d]", "zram_dedup")["by_construction"].update(
        mappin={"pte-swap-entry": "partial", "slot-remap": "present", "pte-frame": "partial"}))
    assert any("1[d] x zram_dedup" in p and "construction 'mappin' is not in" in p for p in ps)


def test_reading_naming_an_unknown_alternative(data):
    ps = _reading_problems(data, lambda d: pa_cell(d, "1[d]", "ksm-linux-2.6.32")["by_construction"]["mapping"].update(
        {"pte-teleport": "not disclosed"}), "prior_art.yaml")
    assert any("1[d] x ksm-linux-2.6.32" in p and "no alternative 'pte-teleport'" in p for p in ps)


def test_reading_missing_an_alternatives_status(data):
    ps = _reading_problems(data, lambda d: row(d, "1[d]", "zsmalloc_fold")["by_construction"]["mapping"].pop(
        "pte-frame"))
    assert any("1[d] x zsmalloc_fold" in p and "no status under alternative 'pte-frame'" in p for p in ps)


def test_reading_with_an_invalid_status(data):
    ps = _reading_problems(data, lambda d: row(d, "1[f]", "zram_merge")["by_construction"]["mapping"].update(
        {"slot-remap": "disclosed"}))        # a prior-art status in the designs chart
    assert any("1[f] x zram_merge" in p and "status 'disclosed' is not one of" in p for p in ps)


def test_headline_must_follow_from_the_readings(data):
    def mutate(d):
        row(d, "1[e]", "patent_claim1")["status"] = "present"      # its alternatives disagree
        r = row(d, "1[f]", "patent_claim1")                          # every alternative present ...
        r["by_construction"]["mapping"]["pte-frame"] = "absent"      # ... now one is not
    ps = _reading_problems(data, mutate)
    assert any("1[e] x patent_claim1" in p and "should be 'undetermined'" in p for p in ps)
    assert any("1[f] x patent_claim1" in p and "should be 'undetermined'" in p for p in ps)


def test_readings_whose_defaults_disagree(data):
    def mutate(d):
        r = row(d, "1[e]", "upstream_zram")
        r["by_construction"]["equal"] = {"larger": "present", "smaller": "present"}
    ps = _reading_problems(data, mutate)
    assert any("1[e] x upstream_zram" in p and "default alternatives give different statuses" in p for p in ps)


def test_reading_reasoning_must_say_what_each_alternative_means(data):
    edit(data / "chart.yaml", lambda d: row(d, "1[d]", "zram_dedup")["construction_reasoning"].update(
        mapping="Under pte-swap-entry and slot-remap the link differs."))
    def mutate(d):
        r = pa_cell(d, "1[f]", "vmware-esx-2002")["construction_reasoning"]
        r["mapping"] += " The right reading is pte-frame, and ESX anticipates it."
    edit(data / "prior_art.yaml", mutate)
    ps = problems(data)
    assert any("1[d] x zram_dedup" in p and "does not say what pte-frame means" in p for p in ps)
    assert any("1[f] x vmware-esx-2002" in p and "which reading to prefer" in p for p in ps)
    assert any("1[f] x vmware-esx-2002" in p and "construction mapping reasoning states a legal conclusion" in p
               for p in ps)


def test_readings_without_a_constructions_file(data):
    (data / "constructions.yaml").unlink()
    ps = problems(data)
    assert any("1[d] x zram_dedup" in p and "constructions.yaml does not exist" in p for p in ps)


def test_bundled_data_passes_claims_check_with_constructions(capsys):
    from pagemerge.cli import main
    assert main(["claims", "check"]) == 0
    assert ": ok: 48 rows" in capsys.readouterr().out


def test_claims_check_runs_the_constructions_check(monkeypatch, capsys):
    import claims.constructions as cons
    from pagemerge.cli import main
    monkeypatch.setattr(cons, "check_constructions", lambda b, path=None: ["constructions.yaml: a planted problem"])
    assert main(["claims", "check"]) == 1
    assert "constructions.yaml: a planted problem" in capsys.readouterr().err


def test_report_cells_show_the_status_under_each_reading(reviewed_report):
    import csv
    import hashlib
    import re
    from engine.pages import PageSet, default_pages_path
    page, out = reviewed_report
    body = _table(page, "chart-table")
    cell = body[body.index('<tr data-element="1[d]"'):body.index('<tr data-element="1[e]"')]
    block = [b[:b.index("</ul>")] for b in cell.split('<div class="readings" data-construction="mapping">')[1:]]
    assert len(block) == 5          # zram_dedup, zram_merge, zsmalloc_fold, ksm, patent_claim1
    items = re.findall(r'<li data-alternative="([^"]+)" data-reading-status="([^"]+)">', block[0])
    assert items == [("pte-swap-entry", "partial"), ("slot-remap", "present"), ("pte-frame", "partial")]
    # backed by the claimed method under each reading on the report's memory: every duplicate of an
    # earlier page is shared under each mapping (which changes what is repointed, not which pages)
    ps = PageSet.open(default_pages_path())
    dups = len(ps) - len({hashlib.sha256(bytes(ps.page(i))).digest() for i in range(len(ps))})
    ev = re.findall(r'data-evidence="mapping=([^"]+)">; the claimed method under this reading on this memory: '
                    r'(\d+) pages shared in the smaller branch, (\d+) in the larger', block[0])
    assert [a for a, _s, _l in ev] == ["pte-swap-entry", "slot-remap", "pte-frame"]
    assert all(int(s) + int(big) == dups for _a, s, big in ev)
    pa = _table(page, "prior-art-table")
    assert ('data-reading-status="partly disclosed"><span class="badge s-partly-disclosed">partly disclosed</span> '
            'under <b>pte-frame</b>') in pa
    assert len(re.findall(r'<td class="cell-[a-z-]+" data-status="', pa)) == 80    # one per cell, as before
    assert '<li data-claim="1" data-subject="patent_claim1" data-construction="large-branch">' in page
    rows = list(csv.DictReader(open(out / "chart-US9977598.csv", encoding="utf-8")))
    d = next(r for r in rows if r["element"] == "1[d]" and r["mechanism"] == "zram_dedup")
    assert d["status_under_constructions"] == ("mapping: partial under pte-swap-entry, present under slot-remap, "
                                               "partial under pte-frame")
    rows = list(csv.DictReader(open(out / "prior-art-US9977598.csv", encoding="utf-8")))
    z = next(r for r in rows if r["element"] == "1[c]" and r["reference"] == "zram-3.14")
    assert z["status_under_constructions"].startswith("predetermined-size: partly disclosed under huge-threshold")


def test_second_space_reading_and_the_combinations_that_rely_on_it(data):
    chart = yaml.safe_load((data / "chart.yaml").read_text())
    # zram's pool is carved from the RAM the processes use: a second space under one reading only
    assert row(chart, "1[pre]", "zram_dedup")["by_construction"]["second-space"] == {
        "carved-pool": "present", "separate-device": "partial"}
    pa = yaml.safe_load((data / "prior_art.yaml").read_text())
    assert pa_cell(pa, "1[a]", "zram-3.14")["by_construction"]["second-space"] == {
        "carved-pool": "disclosed", "separate-device": "partly disclosed"}
    comb = next(c for c in pa["combinations"] if c["id"] == "zram-3.14+ksm-2.6.32")
    assert comb["readings"] == {"second-space": "carved-pool"} and comb["covers"]["1[pre]"] == "zram-3.14"
    assert not [p for p in problems(data) if "combinations" in p]

    def mutate(d):
        next(c for c in d["combinations"] if c["id"] == "zram-3.14+ksm-2.6.32").pop("readings")
        next(c for c in d["combinations"] if c["id"] == "zram-3.14+esx-2002")["readings"] = {
            "second-space": "separate-device"}
        next(c for c in d["combinations"] if c["id"] == "us6789156+zram-3.14")["readings"] = {"second-space": "ram"}
    edit(data / "prior_art.yaml", mutate)
    ps = problems(data)
    assert any("zram-3.14+ksm-2.6.32" in p and "covers 1[pre], but that cell is 'undetermined'" in p for p in ps)
    assert any("zram-3.14+esx-2002" in p and "'partly disclosed' under second-space=separate-device" in p for p in ps)
    assert any("us6789156+zram-3.14" in p and "has no alternative 'ram'" in p for p in ps)


def test_claim_status_under_readings_is_derived_by_hand():
    from claims.analysis import claim_statuses_under_readings
    b = _bundle("A method comprising: hashing a page; and comparing the page.",
                "The method as claimed in claim 1, further comprising keeping a table.")
    one = [e.id for e in b.claims[0].charted_elements()]
    cells = {(e, "X"): "present" for e in one} | {("2[a]", "X"): "present"}
    cells |= {(e, "Y"): "present" for e in one} | {("2[a]", "Y"): "absent"}
    cells[(one[-1], "X")] = cells[(one[-1], "Y")] = "undetermined"
    readings = {(one[-1], "X"): {"c": {"a": "present", "b": "partial"}},
                (one[-1], "Y"): {"c": {"a": "present", "b": "partial"}}}
    got = claim_statuses_under_readings(b, cells, readings, ["X", "Y"], "designs")
    # X: claim 1 is present under a, partial under b, and claim 2 follows it; Y: claim 2's own element
    # is absent under both, so only claim 1 turns
    assert got == [{"claim": 1, "subject": "X", "construction": "c", "statuses": {"a": "present", "b": "partial"}},
                   {"claim": 1, "subject": "Y", "construction": "c", "statuses": {"a": "present", "b": "partial"}},
                   {"claim": 2, "subject": "X", "construction": "c", "statuses": {"a": "present", "b": "partial"}}]


def test_bundled_claim_turning_on_a_reading_is_shown():
    from claims.analysis import summary_lines
    out = analyses(load_bundle(overlay=False))
    # the model of claim 1 under the literal reading of the larger branch: 1[e] undetermined there only
    assert {(r["claim"], r["subject"], r["construction"]) for r in out["designs"]["claims_under_readings"]} == \
        {(1, "patent_claim1", "large-branch"), (2, "patent_claim1", "large-branch")}
    assert out["prior_art"]["claims_under_readings"] == []        # every reference has an element not disclosed
    lines = summary_lines(load_bundle(overlay=False))
    assert any("under the readings of large-branch, claim 1 x patent_claim1 is: present under compressed" in x
               for x in lines)
