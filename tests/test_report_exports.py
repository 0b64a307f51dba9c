"""The charts as Excel and Word documents (both analyses), and the --claims / --elements
filters on every output; checked against the claim data files read directly with YAML."""
import csv
import datetime as dt
import re
import subprocess
import sys

import pytest
import yaml

from claims.store import DATA
from reports.build import build_report, default_inputs

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
CHART = yaml.safe_load((DATA / "US9977598" / "chart.yaml").read_text())
PRIOR = yaml.safe_load((DATA / "US9977598" / "prior_art.yaml").read_text())


def _expected(kind, claims=None, elements=None):
    """{element: {subject: status}} from the YAML, in file order, filtered by hand."""
    cells = CHART["rows"] if kind == "designs" else PRIOR["cells"]
    key = "mechanism" if kind == "designs" else "reference"
    out = {}
    for c in cells:
        el = c["element"]
        if claims is not None and int(el.split("[")[0]) not in claims:
            continue
        if elements is not None and el not in elements:
            continue
        out.setdefault(el, {})[c[key]] = c["status"]
    return out


@pytest.fixture(scope="module")
def claim1(tmp_path_factory):
    out = tmp_path_factory.mktemp("claim1")
    path = build_report(default_inputs(claims=(1,), xlsx=True, docx=True), out_dir=out, now=NOW)
    return out, path.read_text()


def test_xlsx_has_both_analyses_row_per_element(claim1):
    from openpyxl import load_workbook
    out, _ = claim1
    wb = load_workbook(out / "chart-US9977598.xlsx")
    assert wb.sheetnames == ["About", "Later designs", "Prior art"]
    assert "not legal advice" in wb["About"]["A2"].value.lower()
    for sheet, kind, subjects in (("Later designs", "designs", CHART["mechanisms"]),
                                  ("Prior art", "prior_art", PRIOR["references"])):
        ws = wb[sheet]
        rows = list(ws.iter_rows(values_only=True))
        header = rows[0]
        assert header[:2] == ("element", "claim text") and header[-1] == "comment"
        assert header[2:-1] == tuple(f"{s}: {f}" for s in subjects for f in ("status", "reasoning", "pinpoint citations"))
        want = _expected(kind, claims=(1,))
        assert [r[0] for r in rows[1:]] == list(want)                  # claim 1's elements only, in order
        assert all(not r[0].startswith("2[") for r in rows[1:])
        for r in rows[1:]:
            for i, s in enumerate(subjects):
                assert r[2 + 3 * i] == want[r[0]].get(s), (r[0], s)
                if want[r[0]].get(s):
                    assert r[3 + 3 * i]                                 # reasoning present
    # a pinpoint of the YAML appears in its cell
    ws = wb["Prior art"]
    cell = next(c for c in PRIOR["cells"] if c["element"] == "1[b]" and c.get("citations"))
    col = 2 + 3 * PRIOR["references"].index(cell["reference"]) + 2
    row = next(r for r in ws.iter_rows(values_only=True) if r[0] == "1[b]")
    assert cell["citations"][0]["pinpoint"] in row[col]


def test_docx_has_both_tables(claim1):
    from docx import Document
    out, _ = claim1
    doc = Document(out / "chart-US9977598.docx")
    assert doc.core_properties.author == "pagemerge"
    assert any("Not legal advice" in p.text for p in doc.paragraphs)
    assert len(doc.tables) == 2
    for table, kind, subjects in ((doc.tables[0], "designs", CHART["mechanisms"]),
                                  (doc.tables[1], "prior_art", PRIOR["references"])):
        head = [c.text for c in table.rows[0].cells]
        assert head == ["element"] + list(subjects) + ["comment"]
        assert table.rows[0]._tr.trPr.xpath("./w:tblHeader")              # repeats on every page
        want = _expected(kind, claims=(1,))
        body = table.rows[1:]
        assert [r.cells[0].paragraphs[0].text for r in body] == list(want)
        for r in body:
            el = r.cells[0].paragraphs[0].text
            for i, s in enumerate(subjects, 1):
                first = r.cells[i].paragraphs[0].text
                assert first == (want[el].get(s) or ""), (el, s)


def test_filters_apply_to_html_and_csv(claim1):
    out, page = claim1
    body = page[page.index('id="chart-table"'):page.index("</table>", page.index('id="chart-table"'))]
    assert re.findall(r'<tr data-element="([^"]+)"', body) == list(_expected("designs", claims=(1,)))
    pa = page[page.index('id="prior-art-table"'):page.index("</table>", page.index('id="prior-art-table"'))]
    assert re.findall(r'<tr data-element="([^"]+)"', pa) == list(_expected("prior_art", claims=(1,)))
    assert 'data-claim="2"' not in page
    rows = list(csv.DictReader(open(out / "chart-US9977598.csv")))
    assert {r["element"] for r in rows} == set(_expected("designs", claims=(1,)))
    rows = list(csv.DictReader(open(out / "prior-art-US9977598.csv")))
    assert {r["element"] for r in rows} == set(_expected("prior_art", claims=(1,)))


def test_element_filter_and_refusals(tmp_path):
    from reports.exports import chart_tables, element_filter, parse_elements
    from claims.store import load_bundle
    b = load_bundle("US9977598")
    keep = element_filter(b, None, parse_elements("1[a], 1[c]"))
    tables = chart_tables(b, keep=keep)
    assert [[r["element"] for r in t["rows"]] for t in tables] == [["1[a]", "1[c]"], ["1[a]", "1[c]"]]
    for args, msg in ((["--claims", "7"], "pagemerge: --claims: no claim 7 in US9977598; use any of 1, 2"),
                      (["--elements", "1[zz]"], "pagemerge: --elements: unknown 1[zz]; use any of 1[pre], 1[a]"),
                      (["--elements", "../x"], "pagemerge: --elements: '../x' is not an element id"),
                      (["--claims", "1;2"], "pagemerge: --claims: '1;2' is not a claim number")):
        r = subprocess.run([sys.executable, "-m", "pagemerge", "report", "-o", str(tmp_path / "o"), "--xlsx", *args],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.startswith(msg), r.stderr
    assert not (tmp_path / "o").exists()                                   # refused before anything is written


def test_report_accepts_every_option_of_simulate_all():
    from pagemerge.cli import build_parser
    p = build_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    sim = next(a for a in sub.choices["simulate"]._actions if a.__class__.__name__ == "_SubParsersAction")
    opts = lambda q: {s for a in q._actions for s in a.option_strings}  # noqa: E731
    assert opts(sim.choices["all"]) - opts(sub.choices["report"]) == {"--json"}
    assert {"--construction", "--compact", "--swap-fraction", "--policy", "--pdf", "--xlsx", "--docx", "--claims",
            "--elements"} <= opts(sub.choices["report"])


def test_report_cli_writes_every_output(tmp_path):
    """One command line, every output: HTML, both CSVs, xlsx, docx (and the PDF where Chromium is
    installed), on a small page set and one element; the header names the exact command."""
    import shutil

    from tests.pagesets import text_pages
    pages = text_pages(24, distinct=6)
    pf = tmp_path / "p.pages"
    pf.write_bytes(b"".join(pages.page(i) for i in range(len(pages))))
    out = tmp_path / "o"
    args = ["report", str(pf), "--no-manifest", "--mechanisms", "upstream_zram,zram_dedup", "--elements", "1[b]",
            "--xlsx", "--docx", "-o", str(out)] + (["--pdf"] if shutil.which("chromium") else [])
    r = subprocess.run([sys.executable, "-m", "pagemerge", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    names = {"report-US9977598.html", "chart-US9977598.csv", "prior-art-US9977598.csv", "chart-US9977598.xlsx",
             "chart-US9977598.docx"} | ({"report-US9977598.pdf"} if "--pdf" in args else set())
    assert {p.name for p in out.iterdir()} == names
    for n in names - {"prior-art-US9977598.csv"}:
        assert str(out / n) in r.stdout, n
    if "--pdf" in args:
        assert (out / "report-US9977598.pdf").read_bytes()[:5] == b"%PDF-"
    page = (out / "report-US9977598.html").read_text()
    assert "pagemerge report " + str(pf) + " --no-manifest --mechanisms upstream_zram,zram_dedup --elements 1[b]" \
        in page.replace("&#39;", "'").replace("'1[b]'", "1[b]")
    from openpyxl import load_workbook
    wb = load_workbook(out / "chart-US9977598.xlsx")
    assert [r[0] for r in wb["Later designs"].iter_rows(min_row=2, values_only=True)] == ["1[b]"]
    # a rerun replaces its own outputs without --force
    r = subprocess.run([sys.executable, "-m", "pagemerge", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr


def test_document_text_never_becomes_a_formula(tmp_path):
    """A reasoning or comment that starts with '=' stays text in the workbook."""
    import openpyxl
    from reports.exports import no_formulas
    wb = openpyxl.Workbook()
    wb.active.append(["1[a]", '=HYPERLINK("http://example.invalid","x")', "plain"])
    assert wb.active["B1"].data_type == "f"                     # what openpyxl does by itself
    no_formulas(wb)
    wb.save(tmp_path / "t.xlsx")
    back = openpyxl.load_workbook(tmp_path / "t.xlsx")
    assert back.active["B1"].data_type == "s" and back.active["B1"].value.startswith("=HYPERLINK")


def test_csv_cells_never_start_a_formula():
    """OWASP's CSV-injection list: a text cell starting with = + - @ TAB or CR gets an apostrophe
    in front (spreadsheets hide it and show the text); numbers, numeric strings and a lone dash
    stay as they are."""
    import pandas as pd
    from reports.exports import csv_bytes, csv_text_cell
    evil = ['=HYPERLINK("http://example.invalid","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    for s in evil:
        assert csv_text_cell(s) == "'" + s
    for s in ("-12", "+3.5", "-1e-3", "-", "plain", "a=b", "12%"):
        assert csv_text_cell(s) == s
    assert csv_text_cell(-5) == -5
    df = pd.DataFrame({"comm": ["=cmd()", "bash"], "pages": [-1, 3]})
    rows = list(csv.reader(csv_bytes(df).decode().splitlines()))
    assert rows == [["comm", "pages"], ["'=cmd()", "-1"], ["bash", "3"]]


def test_study_processes_csv_keeps_a_hostile_process_name_as_text(tmp_path):
    """A process can name itself (prctl PR_SET_NAME) '=HYPERLINK(...)'; processes.csv must not
    hand that to a spreadsheet as a formula."""
    import pandas as pd
    from reports.study import write_tables
    table = pd.DataFrame({"page_set": ["a"], "mechanism": ["upstream_zram"], "net_saved_bytes": [0]})
    procs = pd.DataFrame({"page_set": ["a"], "pid": [10], "comm": ['=HYPERLINK("http://x.invalid")']})
    paths = write_tables(tmp_path, table, procs)
    rows = list(csv.DictReader(open(paths["processes"], newline="")))
    assert rows[0]["comm"] == '\'=HYPERLINK("http://x.invalid")'
