"""``pagemerge claims ...``: show, import, check, schema (the logic lives in the ``claims`` library)."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path



def cmd_import(a) -> int:
    from claims.ingest import import_file
    from claims.store import save_imported
    from claims.store import normal_number
    docs = import_file(a.file, number=normal_number(a.number) if a.number else "")
    if a.output and len(docs) > 1:
        from engine.errors import InputError
        raise InputError(f"{a.file}: holds {len(docs)} documents; -o names one file (import without -o to save "
                         f"each under output/claims/)")
    for imp in docs:
        out = save_imported(imp, Path(a.output) if a.output else None, force=a.force)
        ind = sum(1 for c in imp.claims if c.independent)
        print(f"{imp.source}: {imp.number or 'no number'}: {len(imp.claims)} claims ({ind} independent, "
              f"{len(imp.claims) - ind} dependent), {sum(len(c.elements) for c in imp.claims)} elements -> {out}")
        for note in imp.notes:
            print(f"  note: {note}")
        for c in imp.claims:
            dep = f"depends on {', '.join(map(str, c.parents))}" if c.parents else "independent"
            pin = f"  [{c.pinpoint}]" if c.pinpoint else ""
            mpf = [e.id for e in c.elements if e.means_plus_function]
            flag = f"; 112(f) candidates {', '.join(mpf)}" if mpf else ""
            print(f"  claim {c.number:>2}: {dep}; elements {', '.join(e.id for e in c.elements)}{flag}{pin}")
    return 0


def cmd_show(a) -> int:
    from claims.chart import analyses, prior_art_flags
    from claims.graph import dependency_graph, dependency_matrix, render_tree
    from claims.store import load_bundle
    b = load_bundle(a.number, a.chart)
    flags = prior_art_flags(b)
    if a.json:
        d = json.loads(b.model_dump_json())
        d["priority_date"] = b.patent.priority_date.isoformat() if b.patent.priority_date else None
        d["prior_art_flags"] = flags
        g = dependency_graph(b.claims)
        d["dependency_edges"] = sorted(g.edges)
        d.update(analyses(b))           # "prior_art" and "designs" (claims/analysis.py)
        print(json.dumps(d, indent=2, ensure_ascii=False))
        return 0
    p = b.patent
    print(f"{p.display_number}: {p.title.value}")
    print(f"  assignee        {p.assignee.value}")
    print(f"  inventors       {', '.join(p.inventors)}")
    print(f"  application     {p.application_number.value or 'not given'}, filed {p.filing_date or 'date not given'}")
    for pc in p.priority_claims:
        print(f"  priority        {pc.kind} {pc.number}, {pc.date}")
    print(f"  priority date   {p.priority_date or 'not known from the imported document'}")
    if p.grant_date:
        print(f"  granted         {p.grant_date}")
    print(f"  CPC             {', '.join(p.cpc)}")
    print("\nClaims")
    pending = []

    def flush():
        if pending:
            rng = f"{pending[0].number}" if len(pending) == 1 else f"{pending[0].number}-{pending[-1].number}"
            print(f"  {rng}. not loaded: {pending[0].how_to_load}")
            pending.clear()
    for c in b.claims:
        if not c.loaded:
            pending.append(c)
            continue
        flush()
        kind = "independent" if c.independent else f"dependent on {', '.join(map(str, c.parents))}"
        pin = f"; {c.pinpoint}" if c.pinpoint else ""
        print(f"  {c.number}. [{kind}; transition '{c.transition}' ({c.transition_type or '-'}){pin}]")
        for e in c.elements:
            mpf = "  (112(f) candidate)" if e.means_plus_function else ""
            print(f"     {e.id:<10} {e.role:<10} {e.text}{mpf}")
    flush()
    print("\nDependency tree")
    print("  " + render_tree(dependency_graph(b.claims)).replace("\n", "\n  "))
    loaded = [c for c in b.claims if c.loaded]
    if len(loaded) > 1:
        print("\nDependency matrix (row depends on column)")
        print("  " + dependency_matrix(loaded).to_string().replace("\n", "\n  "))
    print(f"\nReferences (priority date {p.priority_date}; the flag is a suggestion for review, not a conclusion)")
    for f in flags:
        print(f"  {f['date']:<10} {f['id']:<24} {f['flag']}")
    if b.chart:
        c = b.chart
        print(f"\nChart: {len(c.rows)} rows, claims {c.claims}, mechanisms {', '.join(c.mechanisms)}")
        for m in c.mechanisms:
            st = Counter(r.status for r in c.rows if r.mechanism == m)
            print(f"  {m:<15} " + ", ".join(f"{k} {v}" for k, v in sorted(st.items())))
        print(f"  {c.disclaimer}")
    from claims.analysis import summary_lines
    lines = summary_lines(b)
    if lines:
        print("\n" + "\n".join(lines))
    return 0


def cmd_check(a) -> int:
    from claims.chart import check_chart
    from claims.parse import check_claims
    from claims.store import DATA, load_bundle
    if a.chart and a.patent:
        from engine.errors import InputError
        raise InputError("claims check: give a CHART or --patent, not both")
    if a.patent:
        b = load_bundle(a.patent)
        path = str(DATA / b.patent.number / "chart.yaml") if b.chart is not None else b.patent.number
    else:
        path = a.chart or str(DATA / "US9977598" / "chart.yaml")
        b = load_bundle(chart_path=path)
    problems = check_claims(b, where=b.patent.number)
    if b.chart is not None:
        problems += check_chart(b, where=str(path))
    from claims.constructions import check_constructions
    problems += check_constructions(b)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"pagemerge: {path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    loaded = [c for c in b.claims if c.loaded]
    claims = f"{len(loaded)} claims loaded ({sum(1 for c in loaded if c.independent)} independent)"
    if b.chart is None:
        print(f"{b.patent.number}: ok: {claims}, dependencies and elements consistent; no claim chart yet")
        return 0
    c = b.chart
    print(f"{path}: ok: {len(c.rows)} rows, every element of claims {c.claims} against {len(c.mechanisms)} "
          f"mechanisms; {claims}")
    return 0


def cmd_schema(a) -> int:
    from claims.model import ClaimChartBundle
    print(json.dumps(ClaimChartBundle.model_json_schema(), indent=2))
    return 0


def add_parsers(sub) -> None:
    c = sub.add_parser("claims", help="patents as data: show, import, check, schema")
    cs = c.add_subparsers(dest="claims_cmd", required=True)
    s = cs.add_parser("show", help="bibliographic data, claims, elements, dependency graph, references, chart")
    s.add_argument("number", nargs="?", default="US9977598",
                   help="a bundled or imported patent: US9977598, 'US 9,977,598 B2' or 9977598 (default US9977598)")
    s.add_argument("--chart", metavar="CHART", help="a chart YAML to show instead of the bundled one")
    s.add_argument("--json", action="store_true", help="everything as JSON (the schema of 'claims schema')")
    s.set_defaults(func=cmd_show)
    i = cs.add_parser("import", help="claims from a USPTO XML, a patent PDF or pasted text")
    i.add_argument("file", metavar="FILE", help="a USPTO grant XML (ICE v4.x, weekly files too), a patent PDF, "
                   "or a text file of numbered claims")
    i.add_argument("-o", "--output", metavar="OUT.yaml", help="default: output/claims/<NUMBER>.yaml")
    i.add_argument("--force", action="store_true", help="replace an existing output file")
    i.add_argument("--number", metavar="N", help="the patent number, for pasted text that does not give it")
    i.set_defaults(func=cmd_import)
    k = cs.add_parser("check", help="every element x every mechanism, evidence that exists, dated references")
    k.add_argument("chart", nargs="?", metavar="CHART", help="a chart YAML (default: the bundled US9977598 chart)")
    k.add_argument("--patent", metavar="N", help="check a patent (bundled or imported) and its chart, if it has one")
    k.set_defaults(func=cmd_check)
    j = cs.add_parser("schema", help="the JSON Schema of patents, claims, references and charts")
    j.set_defaults(func=cmd_schema)
