"""``pagemerge claims ...``: show, import, check, schema."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path



def _q(s) -> str:
    return json.dumps(s, ensure_ascii=False)


def imported_yaml(imp) -> str:
    """The imported claims (and bibliographic data, where the format has it) as quoted YAML,
    in the same shape as the bundled patent.yaml."""
    lines = [f"# imported by 'pagemerge claims import' from {imp.source}"]
    pat = imp.biblio.get("patent") if imp.biblio else None
    if pat is not None:
        d = json.loads(pat.model_dump_json(exclude_none=True))
        for k, v in d.items():
            lines.append(f"{k}: {json.dumps(v, ensure_ascii=False)}")
    elif imp.number:
        lines.append(f"number: {_q(imp.number)}")
    lines.append("claims:")
    for c in imp.claims:
        lines.append(f"  - number: {c.number}")
        lines.append(f"    text: {_q(f'{c.number}. {c.text}')}")
        src = c.source + (f"; pinpoint {imp.pinpoints[c.number]}" if c.number in imp.pinpoints else "")
        lines.append(f"    source: {_q(src)}")
    return "\n".join(lines) + "\n"


def cmd_import(a) -> int:
    from claims.ingest import import_file
    from claims.store import output_dir
    from engine.fileio import AtomicFile
    docs = import_file(a.file)
    for k, imp in enumerate(docs):
        if a.output:
            out = Path(a.output) if len(docs) == 1 else Path(a.output).with_name(f"{Path(a.output).stem}-{k + 1}.yaml")
        else:
            out = output_dir() / "claims" / f"{imp.number or Path(a.file).stem}.yaml"
        with AtomicFile(out) as f:
            f.write(imported_yaml(imp).encode())
        ind = sum(1 for c in imp.claims if c.independent)
        print(f"{imp.source}: {len(imp.claims)} claims ({ind} independent, {len(imp.claims) - ind} dependent), "
              f"{sum(len(c.elements) for c in imp.claims)} elements -> {out}")
        for c in imp.claims:
            dep = f"depends on {', '.join(map(str, c.parents))}" if c.parents else "independent"
            pin = f"  [{imp.pinpoints[c.number]}]" if c.number in imp.pinpoints else ""
            print(f"  claim {c.number:>2}: {dep}; elements {', '.join(e.id for e in c.elements)}{pin}")
    return 0


def cmd_show(a) -> int:
    from claims.chart import prior_art_flags
    from claims.graph import dependency_graph, dependency_matrix, render_tree
    from claims.store import load_bundle
    b = load_bundle(a.number, a.chart)
    flags = prior_art_flags(b)
    if a.json:
        d = json.loads(b.model_dump_json())
        d["priority_date"] = b.patent.priority_date.isoformat()
        d["prior_art_flags"] = flags
        g = dependency_graph(b.claims)
        d["dependency_edges"] = sorted(g.edges)
        print(json.dumps(d, indent=2, ensure_ascii=False))
        return 0
    p = b.patent
    print(f"{p.display_number}: {p.title.value}")
    print(f"  assignee        {p.assignee.value}")
    print(f"  inventors       {', '.join(p.inventors)}")
    print(f"  application     {p.application_number.value}, filed {p.filing_date}")
    for pc in p.priority_claims:
        print(f"  priority        {pc.kind} {pc.number}, {pc.date}")
    print(f"  priority date   {p.priority_date}")
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
        print(f"  {c.number}. [{kind}; transition '{c.transition}' ({c.transition_type or '-'})]")
        for e in c.elements:
            print(f"     {e.id:<8} {e.role:<10} {e.text}")
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
    return 0


def cmd_check(a) -> int:
    from claims.chart import check_chart
    from claims.store import DATA, load_bundle
    path = a.chart or str(DATA / "US9977598" / "chart.yaml")
    b = load_bundle(chart_path=path)
    problems = check_chart(b, where=str(path))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"pagemerge: {path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    c = b.chart
    print(f"{path}: ok: {len(c.rows)} rows, every element of claims {c.claims} against {len(c.mechanisms)} mechanisms")
    return 0


def cmd_schema(a) -> int:
    from claims.model import ClaimChartBundle
    print(json.dumps(ClaimChartBundle.model_json_schema(), indent=2))
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("claims", help="patents as data: show, import, check, schema")
    cs = c.add_subparsers(dest="claims_cmd", required=True)
    s = cs.add_parser("show", help="bibliographic data, claims, elements, dependency graph, references, chart")
    s.add_argument("number", nargs="?", default="US9977598")
    s.add_argument("--chart", metavar="CHART", help="a chart YAML to show instead of the bundled one")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)
    i = cs.add_parser("import", help="claims from a USPTO XML, a patent PDF or pasted text")
    i.add_argument("file", metavar="FILE")
    i.add_argument("-o", "--output", metavar="OUT.yaml", help="default: output/claims/<NUMBER>.yaml")
    i.set_defaults(func=cmd_import)
    k = cs.add_parser("check", help="every element x every mechanism, evidence that exists, dated references")
    k.add_argument("chart", nargs="?", metavar="CHART")
    k.set_defaults(func=cmd_check)
    j = cs.add_parser("schema", help="the JSON Schema of patents, claims, references and charts")
    j.set_defaults(func=cmd_schema)
