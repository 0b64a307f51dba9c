"""Claims as data: the bundled patent and chart, parsing, ingest (XML, PDF, text), checks."""
import json
import re
from collections import Counter
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from claims.chart import check_chart, prior_art_flags
from claims.graph import dependency_graph, dependency_matrix, render_tree
from claims.ingest import import_file
from claims.model import ClaimChartBundle, Reference
from claims.parse import find_parents, parse_claim, split_claims_text
from claims.store import DATA, load_bundle
from pagemerge.cli import main
from tests.pdfgen import two_column_patent, write_pdf

#: claims 1-2 verbatim, copied from the project's reference notes (see the file's header)
REF = Path(__file__).resolve().parent / "data" / "US9977598-claims-1-2.txt"
CLAIM1_START = "A method for managing memory space in an electronic device, wherein the electronic device comprises"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle("US9977598", overlay=False)


def test_bundled_patent_data(bundle):
    p = bundle.patent
    assert p.display_number == "US 9,977,598 B2" and p.assignee.value.startswith("MEDIATEK")
    assert str(p.priority_date) == "2014-10-27" and str(p.filing_date) == "2015-07-06"
    assert str(p.grant_date) == "2018-05-22" and p.claims_total == 16
    assert all(x.source for x in (p.title, p.assignee, p.application_number))
    loaded = [c.number for c in bundle.claims if c.loaded]
    assert loaded == [1, 2]
    assert all("pagemerge claims import" in c.how_to_load for c in bundle.claims if not c.loaded)


def test_claims_1_and_2_exactly_as_in_the_reference(bundle):
    text = REF.read_text()
    c1 = re.search(r"> 1\. (A method for managing.*?)\n", text).group(1)
    c2 = re.search(r"> 2\. (The method as claimed.*?)\n", text).group(1)
    assert bundle.claims[0].text == c1
    assert bundle.claims[1].text == c2


def test_claim_elements_and_offsets(bundle):
    c1, c2 = bundle.claims[0], bundle.claims[1]
    assert [e.id for e in c1.elements] == ["1[pre]", "1[a]", "1[b]", "1[c]", "1[d]", "1[e]", "1[f]"]
    assert c1.transition == "comprising" and c1.transition_type == "open" and c1.independent
    for e in c1.elements + c2.elements:
        assert (c1 if e.id.startswith("1") else c2).text[e.start:e.end] == e.text
    assert c1.elements[0].text.startswith(CLAIM1_START) and c1.elements[0].text.endswith("the method comprising:")
    assert c1.elements[1].text.startswith("selecting a candidate page")
    assert c1.elements[5].text.endswith("; and") and c1.elements[6].text.startswith("mapping a virtual address of the candidate page")
    assert not c2.independent and c2.parents == [1]
    assert [e.id for e in c2.charted_elements()] == ["2[a]"]         # only the added limitation
    assert c2.elements[0].role == "reference"


@pytest.mark.parametrize("text,number,parents", [
    ("The method as claimed in claim 1 , further comprising x.", 2, [1]),
    ("The device of claim 3, wherein x.", 4, [3]),
    ("The method according to any one of claims 1 to 3, wherein x.", 5, [1, 2, 3]),
    ("The method of claim 2 or 4, wherein x.", 6, [2, 4]),
    ("A method comprising storing 2 pages and 3 handles.", 3, []),          # numbers are not references
    ("A method for claim processing of 5 items, comprising: x.", 6, []),
])
def test_dependency_comes_only_from_reference_phrases(text, number, parents):
    assert find_parents(text, number) == parents


def test_transitions():
    assert parse_claim(1, "A mixture consisting of: a; and b.").transition_type == "closed"
    assert parse_claim(1, "A mixture consisting essentially of: a; b.").transition_type == "partially closed"
    c = parse_claim(1, "A thing wherein the part comprises a rod, the thing comprising: a; b.")
    assert c.transition == "comprising" and c.elements[1].text == "a;"


def test_dependency_graph_and_matrix():
    claims = [parse_claim(n, t) for n, t in [(1, "A method comprising: a; b."), (2, "The method of claim 1, comprising c."),
                                              (3, "The method of claim 2, comprising d."), (4, "A device comprising: e.")]]
    g = dependency_graph(claims)
    assert sorted(g.edges) == [(1, 2), (2, 3)]
    assert render_tree(g).splitlines() == ["claim 1 (independent)", "    claim 2 (dependent)",
                                           "        claim 3 (dependent)", "claim 4 (independent)"]
    m = dependency_matrix(claims)
    assert m.loc[2, 1] == "direct" and m.loc[3, 1] == "via 2" and m.loc[4, 1] == ""


def test_prior_art_flags_are_date_checks(bundle):
    flags = {f["id"]: f["predates_priority"] for f in prior_art_flags(bundle)}
    assert flags["vmware-esx-2002"] is True and flags["ksm-linux-2.6.32"] is True
    assert flags["kim-dedup-2017-v5"] is False and flags["romanov-merge-2022"] is False
    import datetime as dt
    pd = dt.date(2014, 10, 27)
    coarse = lambda d: Reference(id="x", title="x", date=d, date_kind="post").predates(pd)  # noqa: E731
    assert coarse("2014") is None and coarse("2014-10") is None and coarse("2014-09") is True
    assert coarse("2014-10-27") is False and coarse("2014-10-26") is True


def test_bundled_chart_is_complete(bundle, capsys):
    assert check_chart(bundle) == []
    assert len(bundle.chart.rows) == 8 * 6
    assert main(["claims", "check"]) == 0
    assert "ok: 48 rows" in capsys.readouterr().out


def test_chart_reasoning_states_no_legal_conclusions(bundle):
    for row in bundle.chart.rows:
        assert not re.search(r"infring|invalid|anticipat", row.reasoning, re.I)


# ---- check failures ------------------------------------------------------------------------
@pytest.fixture
def chart_dir(tmp_path):
    d = tmp_path / "US9977598"
    shutil.copytree(DATA / "US9977598", d)
    return d


def run_check(capsys, path):
    rc = main(["claims", "check", str(path)])
    return rc, capsys.readouterr().err


def edit_chart(d, fn):
    p = d / "chart.yaml"
    data = yaml.safe_load(p.read_text())
    fn(data)
    p.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return p


@pytest.mark.parametrize("mutate,expect", [
    (lambda d: d["rows"].pop(3), "has no row for mechanism"),
    (lambda d: d["rows"][0].update(element="1[z]"), "no claim element '1[z]' exists"),
    (lambda d: d["rows"][0].update(mechanism="zswap_dedup"), "no mechanism 'zswap_dedup' exists"),
    (lambda d: d["rows"][1]["evidence"]["events"].append({"kind": "zram.dedup_hit", "where": {}, "shows": "x"}),
     "event type 'zram.dedup_hit', which the engine does not emit"),
    (lambda d: d["rows"][1]["evidence"]["citations"].append({"reference": "nope-1999", "pinpoint": "p"}),
     "reference 'nope-1999'"),
    (lambda d: d["rows"][2].update(reasoning="This mechanism infringes claim 1."), "legal conclusion"),
    (lambda d: d["rows"].append(dict(d["rows"][0])), "duplicate row"),
])
def test_check_finds_each_problem(chart_dir, capsys, mutate, expect):
    p = edit_chart(chart_dir, mutate)
    rc, err = run_check(capsys, p)
    assert rc == 1 and expect in err
    assert all(line.strip() for line in err.splitlines())


def test_yaml_11_booleans_and_malformed_yaml(chart_dir, capsys):
    p = chart_dir / "chart.yaml"
    text = p.read_text()
    p.write_text(text.replace('element: "1[pre]"', "element: no", 1))
    rc, err = run_check(capsys, p)
    assert rc == 2 and "must be a quoted string" in err and err.count("\n") == 1
    p.write_text(text.replace('mechanisms: [', 'mechanisms: [[', 1))
    rc, err = run_check(capsys, p)
    assert rc == 2 and "malformed YAML at line" in err and str(p) in err


def test_reference_without_a_date(chart_dir, capsys):
    r = chart_dir / "references.yaml"
    data = yaml.safe_load(r.read_text())
    victim = data[2]["id"]
    del data[2]["date"]
    r.write_text(yaml.safe_dump(data, allow_unicode=True))
    rc, err = run_check(capsys, chart_dir / "chart.yaml")
    assert rc == 2 and f"{victim!r} has no date" in err


def test_schema_is_exported(capsys):
    assert main(["claims", "schema"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {"Claim", "Element", "ChartRow", "Reference", "Patent"} <= set(s["$defs"])
    assert s == ClaimChartBundle.model_json_schema()


def test_show_json(capsys):
    assert main(["claims", "show", "US9977598", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["priority_date"] == "2014-10-27" and d["dependency_edges"] == [[1, 2]]
    assert len(d["chart"]["rows"]) == 48 and d["claims"][0]["elements"][0]["id"] == "1[pre]"


# ---- ingest --------------------------------------------------------------------------------
ICE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE us-patent-grant SYSTEM "us-patent-grant-v45-2014-04-03.dtd" [ ]>
<us-patent-grant lang="EN" dtd-version="v4.5 2014-04-03" country="US">
<us-bibliographic-data-grant>
<publication-reference><document-id><country>US</country><doc-number>{num:08d}</doc-number><kind>B2</kind><date>20180522</date></document-id></publication-reference>
<application-reference appl-type="utility"><document-id><country>US</country><doc-number>14791703</doc-number><date>20150706</date></document-id></application-reference>
<classifications-cpc><main-cpc><classification-cpc><section>G</section><class>06</class><subclass>F</subclass><main-group>3</main-group><subgroup>0608</subgroup></classification-cpc></main-cpc></classifications-cpc>
<invention-title id="t1">Electronic device &amp; a method</invention-title>
<us-parties><inventors><inventor sequence="001"><addressbook><last-name>Lee</last-name><first-name>Chung-Jung</first-name></addressbook></inventor></inventors></us-parties>
<assignees><assignee><addressbook><orgname>MEDIATEK INC.</orgname></addressbook></assignee></assignees>
<us-related-documents><us-provisional-application><document-id><country>US</country><doc-number>62068808</doc-number><date>20141027</date></document-id></us-provisional-application></us-related-documents>
</us-bibliographic-data-grant>
<abstract id="abstract"><p id="p-0001" num="0000">A method for managing memory &lt;space&gt;.</p></abstract>
<us-claim-statement>What is claimed is:</us-claim-statement>
<claims id="claims">
<claim id="CLM-00001" num="00001"><claim-text><b>1</b>. A method for managing memory space, the method comprising:
<claim-text>selecting a candidate page;</claim-text>
<claim-text>compressing the candidate page to obtain a first compressed page and a first hash value, wherein
<claim-text>the hash is of the compressed page; and</claim-text></claim-text>
<claim-text>mapping a virtual address.</claim-text></claim-text></claim>
<claim id="CLM-00002" num="00002"><claim-text><b>2</b>. The method as claimed in <claim-ref idref="CLM-00001">claim 1</claim-ref>, further comprising maintaining a data structure.</claim-text></claim>
</claims>
</us-patent-grant>
"""


def test_uspto_xml_weekly_file(tmp_path):
    f = tmp_path / "ipg180522.xml"
    f.write_text(ICE.format(num=9977598) + ICE.format(num=9977599))
    docs = import_file(f)
    assert [d.number for d in docs] == ["US9977598", "US9977599"]
    d = docs[0]
    c1, c2 = d.claims
    assert [e.id for e in c1.elements] == ["1[pre]", "1[a]", "1[b]", "1[b.i]", "1[c]"]
    assert c1.elements[0].text == "A method for managing memory space, the method comprising:"
    assert c1.elements[2].text.startswith("compressing") and c1.elements[2].text.endswith("compressed page; and")
    assert c1.elements[3].text == "the hash is of the compressed page; and" and c1.elements[3].parent == "1[b]"
    assert [e.id for e in c1.charted_elements()] == ["1[pre]", "1[a]", "1[b]", "1[c]"]
    assert c2.parents == [1] and not c2.independent
    pat = d.biblio["patent"]
    assert str(pat.priority_date) == "2014-10-27" and pat.title.value == "Electronic device & a method"
    assert pat.cpc == ["G06F 3/0608"] and pat.inventors == ["Chung-Jung Lee"]


def test_xml_is_parsed_safely(tmp_path, capsys):
    f = tmp_path / "evil.xml"
    f.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                 '<us-patent-grant><claims><claim num="1"><claim-text>&xxe;</claim-text></claim></claims></us-patent-grant>')
    assert main(["claims", "import", str(f), "-o", str(tmp_path / "o.yaml")]) == 2
    assert "refused unsafe XML" in capsys.readouterr().err
    f.write_text('<?xml version="1.0"?>\n<us-patent-grant><claims><claim num="1"></us-patent-grant>')
    assert main(["claims", "import", str(f), "-o", str(tmp_path / "o.yaml")]) == 2
    assert "malformed XML" in capsys.readouterr().err
    assert not (tmp_path / "o.yaml").exists()


CLAIM1 = ("A method for managing memory space in an electronic device, the method comprising: selecting a candidate "
          "page from the first memory space for swapping the candidate page out of the first memory space; compressing "
          "the candidate page to obtain a first compressed page and a first hash value of the first compressed page; "
          "and mapping a virtual address of the candidate page to one of the uncompressed pages.")
CLAIM2 = "The method as claimed in claim 1 , further comprising maintaining a specific data structure."


def patent_pdf(path, inline_numbers=False):
    desc = textwrap.wrap("The present invention relates to managing memory space by merging pages. " * 14, 50)
    claims = ["What is claimed is:"] + textwrap.wrap("1. " + CLAIM1, 50) + textwrap.wrap("2. " + CLAIM2, 50)
    # a wrap hyphen: "swap-" at a line end, "ping" on the next line
    for i, line in enumerate(claims):
        if "swapping" in line:
            head, tail = line.split("swapping", 1)
            claims[i:i + 1] = [head + "swap-", "ping" + tail]
            break
    lines = desc + claims
    cols = [lines[i:i + 40] for i in range(0, len(lines), 40)]
    two_column_patent(path, "US 9,977,598 B2", cols, ["United States Patent", "Lee et al.", "(54) ELECTRONIC DEVICE"],
                      inline_numbers=inline_numbers)
    start = len(desc) + 1                        # line index (0-based, document-wide) of "1. A method"
    return start, 40


@pytest.mark.parametrize("inline_numbers", [False, True], ids=["column-numbers-below", "column-numbers-in-header"])
def test_pdf_two_columns_gutter_numbers_and_pinpoints(tmp_path, inline_numbers):
    pdf = tmp_path / "US9977598.pdf"
    start, per_col = patent_pdf(pdf, inline_numbers)
    [imp] = import_file(pdf)
    assert imp.number == "US9977598"
    c1, c2 = imp.claims
    assert c1.text == CLAIM1 and c2.text == CLAIM2                    # no gutter numbers, headers or hyphens left
    col, line = start // per_col + 1, start % per_col + 1
    assert imp.pinpoints[1].startswith(f"{col}:{line}-")
    assert c2.parents == [1]


def test_pdf_without_text_layer_names_ocr(tmp_path, capsys):
    pdf = tmp_path / "scan.pdf"
    write_pdf(pdf, [[], []])
    assert main(["claims", "import", str(pdf)]) == 2
    err = capsys.readouterr().err
    assert "no text layer" in err and "ocrmypdf" in err and str(pdf) in err and err.count("\n") == 1


def test_text_import_and_overlay_of_claims_3_to_16(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path / "output"))
    t = tmp_path / "claims.txt"
    t.write_text("US 9,977,598 B2\nWhat is claimed is:\n1. " + CLAIM1 + "\n2. " + CLAIM2 +
                 "\n3. The method as claimed in claim 2, wherein the specific data structure is a tree.\n"
                 "4. An electronic device, comprising: a processor; and a memory.\n")
    assert main(["claims", "import", str(t)]) == 0
    out = capsys.readouterr().out
    assert "4 claims (2 independent, 2 dependent)" in out
    assert (tmp_path / "output" / "claims" / "US9977598.yaml").exists()
    b = load_bundle("US9977598")
    c3, c4 = b.claims[2], b.claims[3]
    assert c3.loaded and c3.parents == [2] and c4.loaded and c4.independent
    assert b.claims[0].text.startswith(CLAIM1_START)                 # bundled claims stay as they were
    assert not b.claims[4].loaded


def test_split_claims_text_keeps_numbers_in_sequence():
    parts = split_claims_text("1. A method comprising: 2 steps; and\nmore.\n2. The method of claim 1.")
    assert [n for n, _ in parts] == [1, 2] and "2 steps" in parts[0][1]


def test_import_errors(tmp_path, capsys):
    assert main(["claims", "import", str(tmp_path / "missing.pdf")]) == 2
    assert "no such patent file" in capsys.readouterr().err
    e = tmp_path / "empty.txt"
    e.write_text("")
    assert main(["claims", "import", str(e)]) == 2
    assert "empty file" in capsys.readouterr().err
    n = tmp_path / "notes.txt"
    n.write_text("some notes without claims")
    assert main(["claims", "import", str(n)]) == 2
    assert "no numbered claims" in capsys.readouterr().err


# ---- dependency grammar --------------------------------------------------------------------
@pytest.mark.parametrize("text,number,parents", [
    ("The method of claims 1, 2, and 4, wherein x.", 5, [1, 2, 4]),
    ("The method of claims 1-3 and 5, wherein x.", 7, [1, 2, 3, 5]),
    ("The method of claim 1 through 3, wherein x.", 5, [1, 2, 3]),
    ("The method according to any preceding claim, wherein x.", 4, [1, 2, 3]),
    ("The method of any one of the preceding claims, wherein x.", 3, [1, 2]),
    ("The device of either claim 1 or claim 2, wherein x.", 3, [1, 2]),
    ("The method of claim l, wherein x.", 2, [1]),                         # OCR: l for 1
    ("The method of claim lO, wherein x.", 11, [10]),                      # OCR: l and O in 10
    ("The apparatus defined by claim : 3 wherein said x.", 4, [3]),        # OCR: a stray colon
    ("A method as in claim 1 of the related application, comprising x.", 2, []),
    ("The method of claim 1 of U.S. Pat. No. 8,000,000, wherein x.", 3, []),
    ("A method comprising storing a value in claim 3 of the register file.", 5, []),
    ("The method of claim 7, wherein x.", 4, []),                          # not an earlier claim
    ("The apparatus of claim 2 in which the part is x.", 3, [2]),
    ("The method of claim 1 of the present invention, wherein x.", 2, [1]),
    ("The method as in claim 2 in U.S. Pat. No. 8,000,000, wherein x.", 5, []),
])
def test_dependency_grammar(text, number, parents):
    assert find_parents(text, number) == parents


def test_dependent_claims_split_after_wherein_and_colon_bodies():
    c = parse_claim(2, "The system of claim 1, wherein the first layer is adapted to reconstruct a waveform.")
    assert [(e.id, e.role, e.text) for e in c.elements] == [
        ("2[pre]", "reference", "The system of claim 1, wherein"),
        ("2[a]", "limitation", "the first layer is adapted to reconstruct a waveform.")]
    c = parse_claim(1, "A non-transitory medium storing instructions that cause a processor to: receive a page; "
                       "and store the page.")
    assert c.preamble == "A non-transitory medium storing instructions that cause a processor to:"
    assert [e.text for e in c.elements[1:]] == ["receive a page; and", "store the page."]
    c = parse_claim(1, "An apparatus comprising: timing means for providing a signal; wherein: the signal is "
                       "periodic; and a counter coupled to the timing means.")
    assert [e.text for e in c.elements[1:]] == ["timing means for providing a signal;",
                                                "wherein: the signal is periodic; and",
                                                "a counter coupled to the timing means."]
    assert [e.means_plus_function for e in c.elements] == [False, True, False, False]


# ---- real USPTO grants (PatentPublicData samples, public domain) -----------------------------
USPTO = Path(__file__).parent / "data" / "uspto"


def xml_doc(name):
    [d] = import_file(USPTO / name)
    return d, {c.number: c for c in d.claims}


def deps(claims):
    return {n: c.parents for n, c in claims.items() if c.parents}


def test_uspto_2014_claims_with_two_claim_texts_and_a_formula_keep_all_their_text():
    d, c = xml_doc("US08927118.xml")
    assert d.number == "US8927118" and d.kind == "B2" and len(c) == 45
    assert [n for n, x in c.items() if x.independent] == [1, 2, 3, 4]
    c1 = c[1]
    assert c1.text.startswith("A material for an organic electroluminescence device represented by the formula (5): "
                              "[chemistry CHEM-US-00849] wherein: X5 and X6 represent N\u2014R1; R1 represents")
    assert c1.text.endswith("A1, A2, L1, and L2 are each free of any carbonyl group.") and len(c1.text) > 2000
    assert c1.preamble == "A material for an organic electroluminescence device represented by the formula (5):"
    assert c1.elements[1].id == "1[a]" and c1.elements[1].text.startswith("[chemistry CHEM-US-00849]")
    assert c1.elements[2].id == "1[a.i]" and c1.elements[2].text == "wherein: X5 and X6 represent N\u2014R1;"
    assert c1.elements[-1].id == "1[a.viii]"
    for n in (2, 3, 4):
        assert f"[chemistry CHEM-US-0085{n - 2}]" in c[n].text and c[n].text.endswith("free of any carbonyl group.")
    # claim 5 is a device "comprising ... the material ... according to claim 1": claim-ref decides
    assert c[5].parents == [1] and c[45].parents == [5] and c[29].parents == [25] and c[41].parents == [1]
    assert deps(c) == {5: [1], 6: [2], 7: [3], 8: [4], **{n: [5 + (n - 9) % 4] for n in range(9, 29)},
                       29: [25], 30: [26], 31: [27], 32: [28], **{n: [5 + (n - 33) % 4] for n in range(33, 41)},
                       41: [1], 42: [2], 43: [3], 44: [4], 45: [5]}
    assert d.biblio["patent"].inventors[0] == "Tomoki Kato"


def test_uspto_2014_sip_claims():
    d, c = xml_doc("US08930553.xml")
    assert len(c) == 8 and [n for n, x in c.items() if x.independent] == [1, 8]
    assert deps(c) == {2: [1], 3: [1], 4: [1], 5: [4], 6: [4], 7: [1]}
    assert c[3].text == ("The system according to claim 1 wherein the unknown message hardware processor is configured "
                         "to provide the mid-dialog SIP message in an out-of-SIP-protocol callback to the application.")
    assert c[1].preamble == "A system for processing mid-dialog SIP messages, the system comprising:"
    assert [e.id for e in c[1].elements] == ["1[pre]"] + [f"1[{x}]" for x in "abcdefg"]
    assert c[1].elements[2].text == "an unknown message hardware processor configured to"
    assert len(c[8].elements) == 1 + 9
    p = d.biblio["patent"]
    assert p.inventors == ["Nitzan Nissim", "Brian Pulito", "Asaf Zinger"] and str(p.filing_date) == "2012-10-09"


def test_uspto_2014_physiological_monitoring_claims():
    d, c = xml_doc("US08926509.xml")
    assert len(c) == 31 and [n for n, x in c.items() if x.independent] == [1, 6, 11, 17, 22, 27]
    want = {2: [1], 3: [2], 4: [1], 5: [1]}
    for base, kids in ((6, range(7, 11)), (11, range(12, 17)), (17, range(18, 22)), (22, range(23, 27)), (27, range(28, 32))):
        want.update({k: [base] for k in kids})
    assert deps(c) == want


def test_uspto_2006_nested_claim_text_is_nested_elements():
    d, c = xml_doc("US07272630B2.xml")
    assert len(c) == 17 and [n for n, x in c.items() if x.independent] == [1, 10, 14]
    assert deps(c) == {**{n: [1] for n in range(2, 10)}, **{n: [10] for n in range(11, 14)}, **{n: [14] for n in range(15, 18)}}
    assert [e.id for e in c[14].elements] == ["14[pre]", "14[a]", "14[b]", "14[b.i]", "14[b.ii]", "14[b.iii]"]
    assert c[14].elements[1].text == "a processor;"
    assert c[14].elements[5].text == "send the object information to each of the identified one or more additional computing devices."
    assert c[14].elements[5].parent == "14[b]"
    assert d.biblio["patent"].inventors == ["John R. Douceur", "Marvin M. Theimer", "Atul Adya", "William J. Bolosky"]


def test_uspto_2004_applicant_inventors_and_dependencies():
    d, c = xml_doc("US06859910.xml")
    assert len(c) == 2 and c[2].parents == [1] and c[1].independent
    assert d.biblio["patent"].inventors == ["John Charles Croy"]              # v4.0: applicant-inventor
    assert c[2].text == "A method of claim 1, further comprising: caching static content from the set of pages."
    assert [e.id for e in c[1].elements] == ["1[pre]"] + [f"1[{x}]" for x in "abcdefg"]
    d, c = xml_doc("US06970935.xml")
    assert len(c) == 30 and [n for n, x in c.items() if x.independent] == [1, 22, 30]
    want = {n: [1] for n in range(2, 22)}
    want.update({4: [3], 7: [6], 9: [8], 12: [11], 13: [12], 16: [6], 17: [6],
                 23: [22], 24: [23], 25: [23], 26: [25], 27: [22], 28: [22], 29: [22]})
    assert deps(c) == want
    assert d.biblio["patent"].inventors == ["Stephane H. Maes"]


def test_claim_ref_is_the_authority_in_xml(tmp_path):
    x = ICE.format(num=9977598).replace(
        "maintaining a data structure.</claim-text>",
        "maintaining a data structure as in claim 1 of the related application.</claim-text>").replace(
        "<claim-text>mapping a virtual address.</claim-text>",
        "<claim-text>mapping a virtual address as in claim 1 of the parent application.</claim-text>")
    f = tmp_path / "x.xml"
    f.write_text(x)
    [d] = import_file(f)
    assert d.claims[0].independent and d.claims[0].parents == [] and d.claims[1].parents == [1]


# ---- safety: names, dates, sizes, overwrites, round trips ----------------------------------
@pytest.mark.parametrize("country,doc,date,expect", [
    ("../../../../tmp/x", "09977598", "20180522", "country '../../../../tmp/x' is not a two-letter country code"),
    ("/tmp", "09977598", "20180522", "country '/tmp' is not a two-letter country code"),
    ("US", "../../x", "20180522", "doc-number '../../x' is not a patent number"),
    ("US", "9" * 5000, "20180522", "doc-number '999999999999999999999999... (5000 characters)' is not a patent number"),
    ("US", "09977598", "20151399", "publication date '20151399' is not a valid date"),
])
def test_names_and_dates_from_documents_are_checked(tmp_path, capsys, monkeypatch, country, doc, date, expect):
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path / "output"))
    x = ICE.format(num=1).replace("<country>US</country><doc-number>00000001</doc-number><kind>B2</kind><date>20180522</date>",
                                  f"<country>{country}</country><doc-number>{doc}</doc-number><kind>B2</kind><date>{date}</date>")
    f = tmp_path / "bad.xml"
    f.write_text(x)
    assert main(["claims", "import", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err and "Traceback" not in err
    import os
    for d in (doc, doc.lstrip("0")):                     # where a name from the document would have pointed
        if len(d) < 100:
            target = os.path.normpath(os.path.join(tmp_path / "output" / "claims", f"{country}{d}.yaml"))
            assert not os.path.lexists(target), target
    assert not (tmp_path / "output").exists()
    assert not any(tmp_path.rglob("*.yaml"))


def test_output_number_is_proven_inside_its_folder(tmp_path, monkeypatch):
    from claims.store import imported_path
    from engine.errors import InputError
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path))
    assert imported_path("US9977598") == tmp_path / "claims" / "US9977598.yaml"
    for bad in ("../US1", "/etc/passwd", "US1/../../x", "", "US123\n"):
        with pytest.raises(InputError):
            imported_path(bad)


def test_import_never_overwrites_without_force(tmp_path, capsys):
    t = tmp_path / "claims.txt"
    t.write_text("1. A method comprising: a step.\n2. The method of claim 1, wherein the step is quick.\n")
    out = tmp_path / "out.yaml"
    out.write_text("precious\n")
    assert main(["claims", "import", str(t), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists; refusing to overwrite it (use --force)" in err and err.count("\n") == 1
    assert out.read_text() == "precious\n"
    assert main(["claims", "import", str(t), "-o", str(out), "--force"]) == 0
    assert "claims:" in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []       # no temp files left


def test_import_refuses_fifos_and_directories(tmp_path, capsys):
    import os
    fifo = tmp_path / "claims.fifo"
    os.mkfifo(fifo)
    assert main(["claims", "import", str(fifo), "-o", str(tmp_path / "o.yaml")]) == 2
    assert "FIFO" in capsys.readouterr().err
    assert main(["claims", "import", str(tmp_path), "-o", str(tmp_path / "o.yaml")]) == 2
    assert "directory" in capsys.readouterr().err
    assert not (tmp_path / "o.yaml").exists()


def test_what_is_written_is_what_is_loaded(tmp_path, monkeypatch, capsys):
    """Control characters (DEL, C0), byte-order marks, non-BMP characters and YAML specials
    survive the file: the loaded claims equal the imported ones, and show works after."""
    from claims.store import load_bundle as load
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path / "output"))
    weird = ("1. A method comprising: storing a page\x7f with a DEL; reading it back\x01\x1b with C0 controls; "
             "keeping \u201cquotes\u201d, 'no', yes: 1.10 and #hash; and a \U0001d400 bold letter \ufeff.\n"
             "2. The method of claim 1, wherein the page is \u00b5-sized.\n")
    t = tmp_path / "claims.txt"
    t.write_bytes("\ufeffUS 1,234,567 B1\n".encode("utf-8") + weird.encode("utf-8"))
    [imp] = import_file(t)
    assert imp.number == "US1234567" and "\x7f" not in imp.claims[0].text and "\x01" not in imp.claims[0].text
    assert main(["claims", "import", str(t)]) == 0
    b = load("US1234567")
    assert [c.model_dump() for c in b.claims] == [c.model_dump() for c in imp.claims]
    assert "\U0001d400 bold letter" in b.claims[0].text and "'no', yes: 1.10 and #hash" in b.claims[0].text
    capsys.readouterr()
    assert main(["claims", "show", "US1234567"]) == 0
    # the same claims as UTF-16 text with a byte-order mark
    t16 = tmp_path / "claims16.txt"
    t16.write_bytes(("US 1,234,567 B1\n" + weird).encode("utf-16"))
    [imp16] = import_file(t16)
    assert [c.text for c in imp16.claims] == [c.text for c in imp.claims]


def test_utf16_xml_with_a_byte_order_mark(tmp_path):
    x = ICE.format(num=9977598).replace('encoding="UTF-8"', 'encoding="UTF-16"').replace(
        "selecting a candidate page;", "selecting a candidate page \u2014 \u00b5-sized\x7f;")
    f = tmp_path / "u16.xml"
    f.write_bytes(x.encode("utf-16"))
    [d] = import_file(f)
    assert d.number == "US9977598" and d.claims[0].elements[1].text == "selecting a candidate page \u2014 \u00b5-sized;"
    f.write_bytes(b"\xef\xbb\xbf" + ICE.format(num=9977598).encode("utf-8"))
    [d8] = import_file(f)
    (tmp_path / "plain").mkdir()
    plain = tmp_path / "plain" / "u16.xml"                   # the same name: the source names the file
    plain.write_text(ICE.format(num=9977598), encoding="utf-8")
    assert [c.model_dump() for c in d8.claims] == [c.model_dump() for c in import_file(plain)[0].claims]
    assert d8.claims[0].text.startswith("A method for managing memory space, the method comprising: selecting")


def test_claim_parsing_is_linear_in_the_text():
    """A multi-megabyte claim parses in time proportional to its length: compare against a
    linear baseline (a regex scan over the same text), not a fixed time."""
    import time
    unit = "storing a page in a slot of the second memory space; and "
    small, big = unit * 2_000, unit * 80_000                              # ~110 KB and ~4.4 MB
    text = lambda body: "A method comprising: " + body + "mapping it."  # noqa: E731

    def best(fn, arg, k=3):
        t = []
        for _ in range(k):
            t0 = time.perf_counter()
            fn(arg)
            t.append(time.perf_counter() - t0)
        return min(t)
    baseline = lambda s: len(re.findall(r"\bslot\b|;", s))            # noqa: E731
    ts, tb = best(lambda s: parse_claim(1, s), text(small)), best(lambda s: parse_claim(1, s), text(big), 1)
    bs, bb = best(baseline, text(small)), best(baseline, text(big))
    c = parse_claim(1, text(big))
    assert len(c.elements) == 80_000 + 2
    # 40x the text: a linear parser takes about 40x as long (allow 3x slack for noise and GC);
    # the quadratic splitter this replaced took over 1000x
    assert tb / ts < 40 * 3, (ts, tb)
    assert tb < (bb / bs) * ts * 3 + 1.0
    parts = split_claims_text("1. A method comprising: x.\n" +
                              "".join(f"{i}. The method of claim {i - 1}, wherein x is {i}.\n" for i in range(2, 900)))
    assert len(parts) == 899


def test_encrypted_pdf_says_password(tmp_path, capsys):
    from tests.pdfgen import write_pdf as wp
    pdf = tmp_path / "locked.pdf"
    wp(pdf, [[(72, 700, "What is claimed is: 1. A method comprising: a step.", 10)]], user_password="secret")
    assert main(["claims", "import", str(pdf), "-o", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err
    assert "encrypted" in err and "password" in err and err.count("\n") == 1
    assert not (tmp_path / "o.yaml").exists()


def test_imported_xml_patent_is_first_class(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path / "output"))
    assert main(["claims", "import", str(USPTO / "US08930553.xml")]) == 0
    assert (tmp_path / "output" / "claims" / "US8930553.yaml").exists()
    capsys.readouterr()
    assert main(["claims", "show", "US8930553"]) == 0
    out = capsys.readouterr().out
    assert "Managing mid-dialog session initiation protocol (SIP) messages" in out and "1[g]" in out
    assert main(["claims", "show", "US 8,930,553 B2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["dependency_edges"] == [[1, 2], [1, 3], [1, 4], [1, 7], [4, 5], [4, 6]]
    assert main(["claims", "check", "--patent", "US8930553"]) == 0
    assert "8 claims loaded (2 independent)" in capsys.readouterr().out
    # a second import replaces the earlier import of the same patent (it is ours), -o does not
    assert main(["claims", "import", str(USPTO / "US08930553.xml")]) == 0


# ---- PDFs: real scanned grants and a generated grant laid out like US 9,977,598 -------------
DATA_DIR = Path(__file__).parent / "data"


def test_old_scanned_grant_with_a_bare_number_header():
    """US 4,136,359 (1979): header "4,136,359", column numbers on a line below, OCR text layer.
    Expectations read from the page images (pages 6 and 7)."""
    [d] = import_file(DATA_DIR / "US4136359.pdf")
    assert d.number == "US4136359" and not d.notes
    c = {x.number: x for x in d.claims}
    assert len(c) == 8 and [n for n, x in c.items() if x.independent] == [1, 5]
    # claim 2 reads "claims 1" in the OCR layer, claim 4 "claim : 3"
    assert {n: x.parents for n, x in c.items() if x.parents} == {2: [1], 3: [2], 4: [3], 6: [5], 7: [6], 8: [7]}
    assert c[1].text.startswith("In a microcomputer for use with a video display an improved timing apparatus "
                                "comprising: a timing reference means for providing a color reference signal for said "
                                "video display; a horizontal synchronization means")   # "refer-/ence" rejoined
    assert c[1].text.endswith("whereby the color graphics on a raster scanned cathode ray tube are sharply defined in "
                              "the vertical direction.")
    assert c[6].text == ("The apparatus defined by claim 5 including a digital divider for dividing by an odd-integer "
                         "coupled between said reference means and said counter.")
    assert [e.id for e in c[1].elements if e.means_plus_function] == ["1[a]", "1[b]", "1[c]"]
    # pinpoints that the page images show without doubt (nearest printed gutter number)
    assert c[1].pinpoint.endswith("-6:68")
    assert c[2].pinpoint.startswith("7:1-")                     # the first line of column 7
    assert c[4].pinpoint.startswith("7:8-") and c[5].pinpoint == "7:12-8:7"
    assert c[6].pinpoint == "8:8-8:10" and c[7].pinpoint == "8:11-8:15" and c[8].pinpoint == "8:16-8:19"
    # page 6 prints "30" in the gutter beside column 6's "40 couples line 44 ...": a number in
    # the text next to the gutter stays text, and the line is 30
    from claims.ingest.pdf import read_pages
    rows = {(col, line): t for col, line, t in read_pages(DATA_DIR / "US4136359.pdf")}
    assert rows[(6, 30)] == "40 couples line 44 to the fourth stage of register 37 to"
    assert rows[(8, 5)] == "reference means;" and rows[(7, 10)].startswith("signal and said horizontal")
    # lines beside printed numbers on page 6, both columns (read from the page image)
    assert rows[(6, 5)] == "respect to the color subcarrier reference signal. This"
    assert rows[(5, 10)] == "Line 44 is coupled to the fourth stage of register 36 in"
    assert rows[(5, 15)] == "through the multiplexer 40 in order that four bits of data"
    assert rows[(5, 45)] == "registers 36 and for the lower rectangles to register 37."
    assert rows[(5, 60)] == "White; 1111" and rows[(6, 65)] == "color reference signal;"
    # the title page: "[22] Filed: Apr. 11, 1977", "[45] Jan. 23, 1979", "8 Claims, 4 Drawing Figures"
    p = d.biblio["patent"]
    assert (str(p.filing_date), str(p.grant_date), p.claims_total) == ("1977-04-11", "1979-01-23", 8)


def test_imported_pdf_patent_is_checked_against_its_claim_count(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path / "output"))
    assert main(["claims", "import", str(DATA_DIR / "US4136359.pdf")]) == 0
    capsys.readouterr()
    assert main(["claims", "check", "--patent", "4,136,359"]) == 0
    assert "US4136359: ok: 8 claims loaded (2 independent)" in capsys.readouterr().out
    assert main(["claims", "show", "US4136359"]) == 0
    out = capsys.readouterr().out
    assert "filed 1977-04-11" in out and "8:16-8:19" in out and "(112(f) candidate)" in out


def test_scanned_grant_whose_claim_pages_are_images_names_ocr(capsys):
    """US 6,120,588: text on pages 1-3 and 20 only; the claims (pages 25-26) are images."""
    assert main(["claims", "import", str(DATA_DIR / "US6120588.pdf"), "-o", "/nonexistent/x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ocrmypdf" in err and "21-26 are images without text" in err


def test_patent_number_forms():
    from claims.ingest import normalize_number
    for s in ("US 6,285,999 B1", "US006285999", "US006285999B1", "6285999", "U.S. Pat. No. 6,285,999"):
        assert normalize_number(s)[0] == "US6285999", s
    assert normalize_number("4,136,359") == ("US4136359", "")
    assert normalize_number("US 9,977,598 B2") == ("US9977598", "B2")
    assert normalize_number("no number here 12") is None


# claims 3-16 of US 9,977,598 are not in this repository; the generated grant carries invented
# text, marked as such in every claim, and is never saved as the patent's real claims
INVENTED_DEPS = {3: [1], 4: [3], 5: [1], 6: [5], 7: [], 8: [7], 9: [8], 10: [7], 11: [7], 12: [], 13: [12],
                 14: [12], 15: [13], 16: [12]}


def invented_claim(n: int) -> str:
    mark = f"[TEST TEXT, NOT THE PATENT'S CLAIM {n}]"
    p = INVENTED_DEPS[n]
    if not p:
        return (f"{n}. An electronic device {mark} for test number {n}, comprising: a first memory space; a second "
                f"memory space; and a processor configured to perform test step {n}.")
    return f"{n}. The method as claimed in claim {p[0]}, wherein {mark} the test value is {n}."


def test_import_of_a_us9977598_pdf_fills_claims_3_to_16(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path / "output"))
    bundled = (DATA / "US9977598" / "patent.yaml").read_bytes()
    real = load_bundle("US9977598", overlay=False).claims
    desc = textwrap.wrap("The present invention relates to managing memory space of an electronic device by "
                         "comparing hash values of compressed pages. " * 30, 52)
    claims = [f"{c.number}. {c.text}" for c in real[:2]] + [invented_claim(n) for n in range(3, 17)]
    lines = desc + ["What is claimed is:"]
    first_line = {}
    for t in claims:
        first_line[int(t.split(".")[0])] = len(lines)
        lines += textwrap.wrap(t, 52, break_on_hyphens=False)
    per = 60
    cols = [lines[i:i + per] for i in range(0, len(lines), per)]
    pdf = tmp_path / "US9977598.pdf"
    front = ["(12) United States Patent", "Lee et al.", "(10) Patent No.: US 9,977,598 B2",
             "(45) Date of Patent: May 22, 2018", "(54) ELECTRONIC DEVICE AND A METHOD FOR MANAGING MEMORY",
             "(22) Filed: Jul. 6, 2015", "16 Claims, 5 Drawing Sheets"]
    sheets = [f"U.S. Patent May 22, 2018 Sheet {k} of 5 US 9,977,598 B2" for k in range(1, 6)]
    two_column_patent(pdf, "US 9,977,598 B2", cols, front, inline_numbers=True, drawing_sheets=sheets)
    assert main(["claims", "import", str(pdf)]) == 0
    out = capsys.readouterr().out
    assert "US9977598: 16 claims" in out and (tmp_path / "output" / "claims" / "US9977598.yaml").exists()
    [imp] = import_file(pdf)
    p = imp.biblio["patent"]
    assert (str(p.filing_date), str(p.grant_date), p.claims_total, imp.kind) == ("2015-07-06", "2018-05-22", 16, "B2")
    b = load_bundle("US9977598")
    assert [c.number for c in b.claims] == list(range(1, 17)) and all(c.loaded for c in b.claims)
    assert [c.text for c in b.claims[:2]] == [c.text for c in real[:2]]           # the bundled claims stay
    for c in b.claims[2:]:
        assert c.parents == INVENTED_DEPS[c.number] and c.independent == (not INVENTED_DEPS[c.number])
        assert c.text == invented_claim(c.number).split(". ", 1)[1]
        k = first_line[c.number]
        assert c.pinpoint.startswith(f"{k // per + 1}:{k % per + 1}-")
    from claims.parse import check_claims
    assert check_claims(b, "US9977598") == []
    assert main(["claims", "show", "US9977598"]) == 0
    shown = capsys.readouterr().out
    assert "not loaded" not in shown and "TEST TEXT, NOT THE PATENT'S CLAIM 16" in shown
    assert (DATA / "US9977598" / "patent.yaml").read_bytes() == bundled           # never bundled
    # a title page that names another patent is refused
    two_column_patent(pdf, "US 9,977,598 B2", cols, ["(10) Patent No.: US 9,977,599 B2"], inline_numbers=True)
    assert main(["claims", "import", str(pdf), "--force"]) == 2
    assert "title page gives US9977599" in capsys.readouterr().err


def test_report_on_an_imported_patent(tmp_path, monkeypatch):
    """report --patent works on a patent known only from its import: the claims and their
    tree appear, the missing chart is stated, no row is invented."""
    from engine.pages import PageSet
    from reports.build import ReportInputs, build_report
    monkeypatch.setenv("PAGEMERGE_OUTPUT", str(tmp_path / "output"))
    assert main(["claims", "import", str(USPTO / "US08930553.xml")]) == 0
    pages = tmp_path / "p.pages"
    pages.write_bytes(bytes(4096) + b"\x01" * 4096 + b"\x01" * 4096 + bytes(range(256)) * 16)
    html = build_report(ReportInputs(pages=PageSet.open(pages), manifest=None, source="test pages",
                                     patent="US 8,930,553 B2"), out_dir=tmp_path / "report").read_text()
    assert "Managing mid-dialog session initiation protocol (SIP) messages" in html
    assert "US8930553 has no claim chart yet" in html and "claim 8" in html


def test_pinpoints_follow_the_printed_grid_when_claims_are_spaced_apart(tmp_path):
    """Grants set extra space between claims, so text drifts off the grid of printed line
    numbers; the line of a text line is where it stands on that grid (computed here from the
    layout: line n is printed at y = 730 - 11 (n - 1)), not its count from the column top."""
    claims = ["What is claimed is:"]
    for n in range(1, 13):
        body = f"{n}. " + ("A device comprising: a part; and a holder." if n in (1, 7) else
                           f"The device of claim {n - 1}, wherein the part is number {n} of a series of parts "
                           f"that are held by the holder in a row.")
        claims += textwrap.wrap(body, 50)
    cols = [claims[i:i + 55] for i in range(0, len(claims), 55)]
    pdf = tmp_path / "spaced.pdf"
    placed = two_column_patent(pdf, "US 9,977,598 B2", cols, ["(10) Patent No.: US 9,977,598 B2"],
                               inline_numbers=True, gap_before=lambda t: bool(re.match(r"\d+\. ", t)), gap=4.0)
    [d] = import_file(pdf)
    want, counted, seen = {}, {}, Counter()
    for col, y, text in placed:
        seen[col] += 1
        m = re.match(r"(\d+)\. ", text)
        if m:
            want[int(m.group(1))] = f"{col}:{round((730 - y) / 11) + 1}"
            counted[int(m.group(1))] = f"{col}:{seen[col]}"
    assert sum(want[n] != counted[n] for n in want) >= 3            # counting lines would be wrong here
    assert {c.number: c.pinpoint.split("-")[0] for c in d.claims} == want


@pytest.mark.parametrize("parties,names", [
    # v4.0-4.2: applicants who are inventors
    ('<parties><applicants><applicant sequence="001" app-type="applicant-inventor" designation="us-only"><addressbook>'
     '<last-name>Lee</last-name><first-name>Chung-Jung</first-name></addressbook></applicant>'
     '<applicant sequence="002" app-type="applicant" designation="us-only"><addressbook><orgname>MEDIATEK INC.</orgname>'
     '</addressbook></applicant></applicants></parties>', ["Chung-Jung Lee"]),
    # v4.3/4.4: us-applicant who are inventors
    ('<us-parties><us-applicants><us-applicant sequence="001" app-type="applicant-inventor" designation="us-only">'
     '<addressbook><last-name>Tang</last-name><first-name>Nicholas Ching Hui</first-name></addressbook></us-applicant>'
     '</us-applicants></us-parties>', ["Nicholas Ching Hui Tang"]),
    # v4.5-4.7: inventors of their own
    ('<us-parties><us-applicants><us-applicant sequence="001" app-type="applicant" applicant-authority-category="assignee">'
     '<addressbook><orgname>MEDIATEK INC.</orgname></addressbook></us-applicant></us-applicants><inventors>'
     '<inventor sequence="001" designation="us-only"><addressbook><last-name>Chang</last-name><first-name>Chin-Wen'
     '</first-name></addressbook></inventor></inventors></us-parties>', ["Chin-Wen Chang"]),
])
def test_inventors_in_every_ice_form(tmp_path, parties, names):
    x = re.sub(r"<us-parties>.*?</us-parties>", parties, ICE.format(num=9977598), flags=re.S)
    f = tmp_path / "x.xml"
    f.write_text(x)
    assert import_file(f)[0].biblio["patent"].inventors == names


def test_tables_formulas_and_images_are_placeholders_never_dropped(tmp_path):
    x = ICE.format(num=9977598).replace(
        "<claim-text>selecting a candidate page;</claim-text>",
        '<claim-text>selecting a candidate page by <maths id="MATH-US-00001" num="00001"><math><mi>h</mi></math>'
        '</maths> and the values in <tables id="TABLE-US-00001" num="00001"><table><tgroup cols="1"><tbody><row>'
        '<entry>9</entry></row></tbody></tgroup></table></tables> shown as <img id="EMI-00002" file="x.TIF"/>;'
        '</claim-text>')
    f = tmp_path / "x.xml"
    f.write_text(x)
    c1 = import_file(f)[0].claims[0]
    assert c1.elements[1].text == ("selecting a candidate page by [formula MATH-US-00001] and the values in "
                                   "[table TABLE-US-00001] shown as [image EMI-00002];")


def test_ocr_normalisation():
    from claims.ingest.pdf import normalize_ocr
    vocab = Counter({"reference": 9, "refer": 1, "ence": 2, "predetermined": 3, "predeter": 1, "mined": 1,
                     "known": 4, "claim": 5, "in": 50, "to": 60, "into": 2, "first": 3})
    assert normalize_ocr(["a timing refer", "ence signal", "in", "to the \ufb01rst", "predeter-", "mined count"], vocab) \
        == "a timing reference signal in to the first predetermined count"
    assert normalize_ocr(["is knoWn from c1aim 3"], vocab) == "is known from claim 3"
    assert normalize_ocr(["an odd-", "integer"], Counter({"integer": 4})) == "an odd-integer"


def test_show_and_check_refuse_unsafe_numbers(capsys):
    for bad in ("../../../etc/passwd", "/etc/passwd", "US1/../../x"):
        assert main(["claims", "show", bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_claims_that_run_onto_an_image_page_are_not_cut_silently(tmp_path, capsys):
    lines = ["What is claimed is:"] + textwrap.wrap("1. A method comprising: storing a page; and reading the "
                                                    "page back from the slot where it was", 50)
    pdf = tmp_path / "cut.pdf"
    two_column_patent(pdf, "US 9,977,598 B2", [lines, []], ["(10) Patent No.: US 9,977,598 B2"], inline_numbers=True,
                      image_pages_after=1)
    assert main(["claims", "import", str(pdf), "-o", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err
    assert "claim 1 breaks off where pages 3 are images" in err and "ocrmypdf" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", sorted(p.name for p in USPTO.glob("*.xml")))
def test_every_uspto_sample_imports_without_loss(name):
    """Every character of every claim survives: the claim text, placeholders aside, equals the
    XML's own text of that claim (tags stripped, entities decoded, the leading number dropped),
    and there are as many claims as <number-of-claims> says."""
    import html
    raw = (USPTO / name).read_text()
    block = re.search(r"<claims[ >].*?</claims>", raw, re.S).group(0)
    want = {}
    for m in re.finditer(r'<claim id="[^"]*" num="0*(\d+)"[^>]*>(.*?)</claim>', block, re.S):
        text = html.unescape(re.sub(r"<[^>]+>", " ", m.group(2)))
        want[int(m.group(1))] = re.sub(r"\s+", "", re.sub(r"^\s*\d+\s*\.", "", text))
    [d] = import_file(USPTO / name)
    got = {c.number: re.sub(r"\s+", "", re.sub(r"\[(?:chemistry|formula|table|image) [A-Z0-9-]+\]", "", c.text))
           for c in d.claims}
    assert got == want
    assert len(d.claims) == int(re.search(r"<number-of-claims>(\d+)</number-of-claims>", raw).group(1))
    assert d.biblio["patent"].claims_total == len(d.claims)
