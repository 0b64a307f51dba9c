"""Claims as data: the bundled patent and chart, parsing, ingest (XML, PDF, text), checks."""
import json
import re
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
from engine.cli import main
from tests.pdfgen import two_column_patent, write_pdf

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "patent-US9977598.md"
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


@pytest.mark.skipif(not REF.exists(), reason="shared/reference not beside the checkout")
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
    del data[2]["date"]
    r.write_text(yaml.safe_dump(data, allow_unicode=True))
    rc, err = run_check(capsys, chart_dir / "chart.yaml")
    assert rc == 2 and "'vmware-esx-2002' has no date" in err


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
    assert [e.id for e in c1.elements] == ["1[pre]", "1[a]", "1[b]", "1[c]"]
    assert c1.elements[0].text == "A method for managing memory space, the method comprising:"
    assert c1.elements[2].text.startswith("compressing") and c1.elements[2].text.endswith("compressed page; and")
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
    assert "no such file" in capsys.readouterr().err
    e = tmp_path / "empty.txt"
    e.write_text("")
    assert main(["claims", "import", str(e)]) == 2
    assert "empty file" in capsys.readouterr().err
    n = tmp_path / "notes.txt"
    n.write_text("some notes without claims")
    assert main(["claims", "import", str(n)]) == 2
    assert "no numbered claims" in capsys.readouterr().err
