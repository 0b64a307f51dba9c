"""Checking a claim chart: every element against every mechanism, with evidence that exists.

``check_chart`` returns one line per problem (an empty list means the chart is complete):

* a charted claim element with no row for some mechanism (the all-elements rule);
* a row naming an element or a mechanism that does not exist, or a duplicate row;
* evidence naming an event type the engine does not emit;
* and, strictly (:func:`check_strict`, on the designs chart and the prior-art analysis beside
  it): a citation without a pinpoint, or naming an unlisted reference; a quote not found at its
  pinpoint in the reference's stored text (``sources/<id>.txt``); an evidence filter naming a
  field its event type does not have or a value that cannot occur (an unknown mechanism, or
  another mechanism than the run's); a code reference to a file or symbol that does not exist
  in the checkout; identical reasoning in two cells; a prior-art cell citing a reference dated
  on or after the priority date; reasoning that states a legal conclusion (infringement,
  validity, obviousness, anticipation, enforceability, "reads on", "practices the patent", and
  their inflections); a partial status that does not name which sub-limitations hold, or that
  does not follow from them; a listed reference that nothing cites; statuses under claim
  constructions (``by_construction``) naming a construction or alternative that
  ``constructions.yaml`` does not have, leaving an alternative without a status or with an
  invalid one, or a headline status that does not follow from them ("undetermined" where the
  alternatives disagree), and their reasoning missing an alternative.

Malformed YAML, ids that YAML 1.1 turned into booleans or numbers, and a reference without a
date are rejected when the chart is loaded (:mod:`claims.store`).
"""
from __future__ import annotations

import re
from pathlib import Path

from .model import ClaimChartBundle

#: words that state a legal conclusion, with their inflections; reasoning keeps to what the
#: mechanisms and documents do
LEGAL_CONCLUSIONS = re.compile(
    r"\b(?:non-?)?infring\w*|\binvalid(?:ity|ated|ates|ate|ating)?\b|\bvalidity\b|"
    r"\bvalid\s+(?:patent|claims?)\b|\b(?:un)?patentab\w*|\b(?:non-?)?obvious\w*|\banticipat\w*|"
    r"\b(?:un)?enforceab\w*|\bread(?:s|ing)?\s+(?:directly\s+|literally\s+)?on\s+(?:the\s+|this\s+|that\s+|each\s+|every\s+|any\s+)?"
    r"(?:claims?|patent\w*|elements?|limitations?|invention)\b|\bwillful\w*|"
    r"\bpracti[cs](?:e|es|ed|ing)\s+(?:the\s+|this\s+)?(?:patent\w*|claim(?:ed)?\s+(?:method|invention)|invention)",
    re.I)


def engine_mechanisms() -> list[str]:
    from engine.mechanisms import REGISTRY
    return list(REGISTRY)


def engine_event_kinds() -> set[str]:
    from engine.events import all_event_types
    return set(all_event_types())


def charted_elements(bundle: ClaimChartBundle) -> dict[str, int]:
    """element id -> claim number, for the claims the chart covers."""
    want = set(bundle.chart.claims) if bundle.chart else {c.number for c in bundle.claims}
    out = {}
    for c in bundle.claims:
        if c.number in want:
            for e in c.charted_elements():
                out[e.id] = c.number
    return out


def loaded_elements(bundle: ClaimChartBundle) -> dict[str, int]:
    """element id -> claim number, for every loaded claim (the prior-art analysis covers them all,
    including claims a user has imported since the analysis was written)."""
    return {e.id: c.number for c in bundle.claims if c.loaded for e in c.charted_elements()}


def check_chart(bundle: ClaimChartBundle, where: str = "chart", strict: bool = True) -> list[str]:
    chart = bundle.chart
    if chart is None:
        return [f"{where}: no chart"]
    problems = []
    known_mechs = engine_mechanisms()
    kinds = engine_event_kinds()
    all_elements = {e.id for c in bundle.claims for e in c.elements}
    elements = charted_elements(bundle)
    claims_by_no = {c.number: c for c in bundle.claims}
    for n in chart.claims:
        c = claims_by_no.get(n)
        if c is None:
            problems.append(f"{where}: claim {n} is charted but the patent has no claim {n}")
        elif not c.loaded:
            problems.append(f"{where}: claim {n} is charted but not loaded ({c.how_to_load})")
    for m in chart.mechanisms:
        if m not in known_mechs:
            problems.append(f"{where}: mechanism {m!r} is not one of the engine's ({', '.join(known_mechs)})")
    seen = set()
    for i, row in enumerate(chart.rows):
        tag = f"{where}: rows[{i}] ({row.element} x {row.mechanism})"
        if row.element not in all_elements:
            problems.append(f"{tag}: no claim element {row.element!r} exists")
        elif row.element not in elements:
            problems.append(f"{tag}: element {row.element!r} is not charted (a reference phrase, or a claim not in the chart)")
        if row.mechanism not in known_mechs:
            problems.append(f"{tag}: no mechanism {row.mechanism!r} exists")
        key = (row.element, row.mechanism)
        if key in seen:
            problems.append(f"{tag}: duplicate row")
        seen.add(key)
        for ev in row.evidence.events:
            if ev.kind not in kinds:
                problems.append(f"{tag}: evidence names event type {ev.kind!r}, which the engine does not emit")
    for el in elements:
        for mech in chart.mechanisms:
            if mech in known_mechs and (el, mech) not in seen:
                problems.append(f"{where}: claim element {el} has no row for mechanism {mech}")
    if strict:
        p = Path(where)
        base = p.parent if p.is_file() and (p.parent / "patent.yaml").exists() else None
        problems += check_strict(bundle, where, base)
    return problems


def analyses(bundle: ClaimChartBundle, base: Path | None = None, run: dict | None = None) -> dict:
    """``{"prior_art": ..., "designs": ...}`` for ``claims show --json`` (see :mod:`claims.analysis`)."""
    from .analysis import analyses as _analyses
    return _analyses(bundle, base, run)


def prior_art_flags(bundle: ClaimChartBundle) -> list[dict]:
    """Each reference with whether its date precedes the priority date: a flagged
    suggestion for a reviewer, never a conclusion."""
    pd = bundle.patent.priority_date
    out = []
    for r in bundle.references:
        before = r.predates(pd)
        out.append({"id": r.id, "title": r.title, "date": r.date, "date_kind": r.date_kind,
                    "predates_priority": before,
                    "flag": {True: "dated before the priority date (candidate prior art; for review)",
                             False: "dated on or after the priority date",
                             None: "date too coarse to place against the priority date"}[before]})
    return out


def chart_frame(bundle: ClaimChartBundle, field: str = "status"):
    """The chart as a pandas table: one row per element, one column per mechanism."""
    import pandas as pd
    rows = {}
    for r in bundle.chart.rows:
        rows.setdefault(r.element, {})[r.mechanism] = getattr(r, field)
    order = [e for e in dict.fromkeys(r.element for r in bundle.chart.rows)]
    return pd.DataFrame([rows[e] for e in order], index=pd.Index(order, name="element"))[bundle.chart.mechanisms]


# ---- strict checks (claims check) -----------------------------------------------------------
# Each returns one line per problem. ``check_chart`` runs them on the designs chart, and on the
# prior-art analysis, the references and their stored texts found beside the chart.

#: a pinpoint names where in the reference's own text: a release tag with file:lines (or a
#: file's function at a tag), a section / page / figure / abstract, column:line, a paragraph,
#: a claim, or a Message-ID (with the patch or the quoted lines)
PINPOINT = re.compile(
    r"(?:\bv\d[\w.\-]*\s+\S+\.(?:c|h|txt|rst|S|py)(?::\d+(?:-\d+)?|\s+\w+\(\)))"      # tag + file:lines / function()
    r"|(?:@[0-9a-f]{7,40}\s+\S+\.(?:c|h|txt|rst)(?::\d+(?:-\d+)?|\s+\w+\(\)))"         # commit + file
    r"|(?:\b(?:section|sec\.|§|page|p\.|pp\.|figure|fig\.|table)\s*[\dA-Za-z])|(?:\babstract\b)"
    r"|(?:\b\d{1,3}:\d{1,3}(?:-\d{1,3}(?::\d{1,3})?)?\b)"                               # column:line
    r"|(?:¶\s*\[?\d+|\bparagraph\s+\[?\d+|\[\d{4}\])"
    r"|(?:\bclaim\s+\d+)|(?:\bMessage-ID\s+\S+@\S+)"
    r"|(?:\bcommit\s+[0-9a-f]{12,40}\b.*\bmessage\b)", re.I)                          # a commit's message

#: values a filter field can take, where the engine fixes them
_EVENT_VALUES = {
    "link": None, "when": None, "method": ("full compare", "hash only"),
}


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _norm(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


def _uncomment(line: str) -> str:
    """A source line without its C comment leaders, so that a quote of a comment spanning
    lines (" * Pages that compress ...") matches as running text."""
    t = line.strip()
    t = re.sub(r"^(?:/\*+|\*+/?|//)\s?", "", t)
    return re.sub(r"\s*\*/$", "", t)


class StoredText:
    """``sources/<reference>.txt``: short excerpts of a reference's own text, each under the
    pinpoint it was read at (a line ``@@ <pinpoint>``); ``#`` lines before the first excerpt
    describe where the text was read."""

    MAX_LINES = 14
    MAX_CHARS = 1600

    def __init__(self, path: Path):
        from engine.fileio import read_text_input
        self.path = path
        self.excerpts: list[tuple[str, str]] = []
        self.problems: list[str] = []
        cur, lines = None, []
        for raw in read_text_input(path, "stored reference text", 1 << 20).splitlines():
            if raw.startswith("@@ "):
                if cur is not None:
                    self._add(cur, lines)
                cur, lines = raw[3:].strip(), []
            elif cur is None:
                if raw.strip() and not raw.startswith("#"):
                    self.problems.append(f"{path}: text before the first '@@ pinpoint' line")
            else:
                lines.append(_uncomment(raw))
        if cur is not None:
            self._add(cur, lines)

    def _add(self, pin: str, lines: list[str]) -> None:
        while lines and not lines[-1].strip():
            lines.pop()
        body = "\n".join(lines)
        if len(lines) > self.MAX_LINES or len(body) > self.MAX_CHARS:
            self.problems.append(f"{self.path}: excerpt at {pin!r} is {len(lines)} lines, {len(body)} characters; "
                                 f"keep only the short quoted lines (at most {self.MAX_LINES} lines)")
        if not PINPOINT.search(pin):
            self.problems.append(f"{self.path}: excerpt pinpoint {pin!r} names no line, section, page, "
                                 f"column:line, paragraph or Message-ID")
        self.excerpts.append((pin, _norm(body)))

    def find(self, quote: str, pinpoint: str) -> str | None:
        """None if the quote is in the excerpt at ``pinpoint``; otherwise the problem."""
        quote = " ".join(_uncomment(line) for line in quote.splitlines())
        parts = [_norm(p) for p in re.split(r"\s*(?:…|\.\.\.)\s*", quote) if _norm(p)]
        if not parts:
            return None
        at = [body for pin, body in self.excerpts if _norm(pin) == _norm(pinpoint)]
        if any(all(p in body for p in parts) for body in at):
            return None
        elsewhere = [pin for pin, body in self.excerpts if all(p in body for p in parts)]
        if elsewhere:
            return f"quote is stored at {elsewhere[0]!r}, not at the pinpoint {pinpoint!r}"
        return f"quote {quote[:60]!r} is not in the stored text of the reference ({self.path.name})"


def stored_texts(base: Path) -> dict[str, StoredText]:
    d = base / "sources"
    out = {}
    if d.is_dir():
        for p in sorted(d.glob("*.txt")):
            out[p.stem] = StoredText(p)
    return out


def _event_fields(cls) -> dict[str, str]:
    out = {}
    for name, f in cls.__dataclass_fields__.items():
        if name in ("kind", "doc"):
            continue
        t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out[name] = t
    return out


def check_event_filter(kind: str, where: dict, mechanism: str | None) -> list[str]:
    """Problems with one evidence filter: an unknown event type, a field the type does not
    have, a value of the wrong type, or a value that cannot occur in a run of ``mechanism``."""
    from engine.mechanisms import REGISTRY
    from engine.mechanisms import events as dev
    types = engine_event_kinds_map()
    cls = types.get(kind)
    if cls is None:
        return [f"evidence names event type {kind!r}, which the engine does not emit"]
    fields = _event_fields(cls)
    out = []
    allowed = dict(_EVENT_VALUES)
    allowed["link"] = tuple(dev.LINKS) + (dev.LINK_NONE,)
    allowed["when"] = (dev.WHEN_INLINE, dev.WHEN_OFFLINE, dev.WHEN_SCAN, dev.WHEN_SWAPOUT)
    for k, v in where.items():
        if k not in fields:
            out.append(f"evidence filter field {k!r} is not a field of {kind} ({', '.join(fields)})")
            continue
        t = fields[k]
        if t == "bool" and not isinstance(v, bool):
            out.append(f"evidence filter {kind}.{k}={v!r}: the field is true or false")
        elif t == "int" and (isinstance(v, bool) or not isinstance(v, int)):
            out.append(f"evidence filter {kind}.{k}={v!r}: the field is a whole number")
        elif t == "str" and not isinstance(v, str):
            out.append(f"evidence filter {kind}.{k}={v!r}: the field is text")
        elif k == "mechanism":
            if v not in REGISTRY:
                out.append(f"evidence filter {kind}.mechanism={v!r}: no such mechanism ({', '.join(REGISTRY)})")
            elif mechanism is not None and v != mechanism:
                out.append(f"evidence filter {kind}.mechanism={v!r} cannot occur in a run of {mechanism!r}")
        elif k in allowed and allowed[k] is not None and v not in allowed[k]:
            out.append(f"evidence filter {kind}.{k}={v!r} cannot occur (one of: {', '.join(map(str, allowed[k]))})")
    return out


def engine_event_kinds_map() -> dict:
    from engine.events import all_event_types
    return dict(all_event_types())


def _defined_names(tree) -> dict:
    """name -> node for the classes, functions and assignments of a module or class body."""
    import ast
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(t, ast.Name):
                    out[t.id] = node
    return out


def check_code_ref(ref: str, root: Path | None = None) -> str | None:
    """None if ``path[:Symbol[.Member]]`` names a file of the checkout that defines the symbol."""
    import ast
    root = root or repo_root()
    path, _, symbol = ref.partition(":")
    path = path.strip()
    if re.search(r"\s", ref.strip()) or not re.fullmatch(r"[\w./-]+", path) or ".." in path.split("/") or path.startswith("/"):
        return (f"code reference {ref!r} is not a file of the checkout (kernel source is cited as a reference "
                f"with a pinpoint and quote, not as code)")
    p = root / path
    if not p.is_file():
        return f"code reference {ref!r}: no file {path} in the checkout"
    if not symbol:
        return None
    if p.suffix != ".py":
        return None
    try:
        tree = ast.parse(p.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError) as e:
        return f"code reference {ref!r}: {path} does not parse ({e})"
    node = tree
    for part in symbol.strip().split("."):
        names = _defined_names(node)
        if part not in names:
            return f"code reference {ref!r}: {path} defines no {symbol.strip()}"
        node = names[part]
    return None


def _cite_problems(tag, cits, refs, texts, priority=None, prior_art=False) -> list[str]:
    out = []
    for c in cits:
        ref = refs.get(c.reference)
        if ref is None:
            out.append(f"{tag}: citation names reference {c.reference!r}, which is not in the reference list")
            continue
        if not c.pinpoint.strip():
            out.append(f"{tag}: citation of {c.reference} has no pinpoint (tag+file:lines, section/page, "
                       f"column:line or paragraph)")
        elif not PINPOINT.search(c.pinpoint):
            out.append(f"{tag}: citation of {c.reference} pinpoint {c.pinpoint!r} names no line, section, page, "
                       f"column:line, paragraph or Message-ID")
        if c.quote and c.pinpoint.strip() and c.reference in texts:
            why = texts[c.reference].find(c.quote, c.pinpoint)
            if why:
                out.append(f"{tag}: citation of {c.reference}: {why}")
        if prior_art and priority is not None:
            before = ref.predates(priority)
            if before is not True:
                out.append(f"{tag}: prior-art row cites {c.reference} dated {ref.date}, "
                           f"{'on or after' if before is False else 'not clearly before'} the priority date {priority}")
    return out


def _legal(tag, what, text) -> list[str]:
    m = LEGAL_CONCLUSIONS.search(text or "")
    return [f"{tag}: {what} states a legal conclusion ({m.group(0)!r}); keep it to what the mechanism or document does"] \
        if m else []


def _parts_problems(tag, element, status, parts, subs, kind) -> list[str]:
    from .analysis import FULL, NONE, aggregate
    out = []
    mine = subs.get(element, [])
    ids = [s.id for s in mine]
    if parts:
        unknown = [k for k in parts if k not in ids]
        if unknown:
            out.append(f"{tag}: parts {', '.join(unknown)} are not sub-limitations of {element} "
                       f"({', '.join(ids) or 'it has none'})")
        missing = [k for k in ids if k not in parts]
        if missing:
            out.append(f"{tag}: parts leave out sub-limitation(s) {', '.join(missing)}")
        if not unknown and not missing:
            agg = aggregate(list(parts.values()), kind)
            if agg != status:
                out.append(f"{tag}: status {status!r} does not follow from its parts (they give {agg!r})")
    elif status not in (FULL[kind], NONE[kind], "undetermined"):
        out.append(f"{tag}: status {status!r} must name which sub-limitations hold"
                   + ("" if ids else f" (split {element} into sub-limitations in limitations.yaml)"))
    return out


def _reading_problems(tag, status, by_construction, reasoning, kind, cset, where_cset) -> list[str]:
    """Problems with a cell's statuses under the alternatives of claim constructions: a
    construction or alternative that constructions.yaml does not have, an alternative without
    a status, a status that is not one of the analysis's, a headline that does not follow (it
    is "undetermined" when alternatives disagree, else the status they share), default
    alternatives that disagree between constructions, and reasoning that is missing, leaves an
    alternative unnamed, picks a reading or states a legal conclusion."""
    from .analysis import ORDER, headline_status
    from .constructions import CHOOSES_A_READING
    out = []
    if not by_construction and not reasoning:
        return out
    if cset is None:
        return [f"{tag}: gives statuses under constructions ({', '.join(by_construction) or ', '.join(reasoning)}), "
                f"but {where_cset} does not exist"]
    valid = ORDER[kind]
    defaults = {}
    for cid, per in by_construction.items():
        c = cset.get(cid)
        if c is None:
            out.append(f"{tag}: construction {cid!r} is not in {where_cset} "
                       f"(it has {', '.join(x.id for x in cset.constructions)})")
            continue
        alts = [a.id for a in c.alternatives]
        for a in per:
            if a not in alts:
                out.append(f"{tag}: construction {cid} has no alternative {a!r} ({', '.join(alts)})")
        for a in alts:
            if a not in per:
                out.append(f"{tag}: construction {cid}: no status under alternative {a!r}")
        for a, st in per.items():
            if st not in valid:
                out.append(f"{tag}: construction {cid}={a}: status {st!r} is not one of {', '.join(valid)}")
        if c.default in per:
            defaults[cid] = per[c.default]
        text = reasoning.get(cid, "")
        if not text.strip():
            out.append(f"{tag}: construction {cid}: no reasoning saying what each alternative means for this cell")
        else:
            unnamed = [a for a in alts if a in per and not re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", text)]
            if unnamed:
                out.append(f"{tag}: construction {cid}: the reasoning does not say what {', '.join(unnamed)} "
                           f"means for this cell")
            m = CHOOSES_A_READING.search(text)
            if m:
                out.append(f"{tag}: construction {cid}: reasoning says which reading to prefer ({m.group(0)!r}); "
                           f"say what each reading does")
            out += _legal(tag, f"construction {cid} reasoning", text)
    for cid in reasoning:
        if cid not in by_construction:
            out.append(f"{tag}: construction_reasoning names {cid!r}, which has no statuses in by_construction")
    if len(set(defaults.values())) > 1:
        out.append(f"{tag}: the default alternatives give different statuses ("
                   + ", ".join(f"{k}: {v}" for k, v in defaults.items()) + "); they describe the same reading")
    clean = {cid: per for cid, per in by_construction.items() if all(v in valid for v in per.values())}
    want = headline_status(clean, kind)
    if want is not None and not out and want != status:
        detail = "; ".join(f"{cid}: " + ", ".join(f"{v} under {a}" for a, v in per.items())
                           for cid, per in clean.items())
        out.append(f"{tag}: status {status!r} does not follow from its statuses under the constructions "
                   f"({detail}): it should be {want!r}")
    return out


def _status_under(cell, readings: dict) -> str:
    """A cell's status under chosen readings: where the cell's status turns on constructions and
    the readings choose an alternative of each, the status every chosen alternative gives (if
    they agree); otherwise the cell's headline status."""
    per = [cell.by_construction[cid].get(readings[cid]) for cid in cell.by_construction if cid in readings]
    if per and len(per) == len(cell.by_construction) and len(set(per)) == 1 and per[0] is not None:
        return per[0]
    return cell.status


def _constructions_beside(base: Path | None):
    """(the constructions data in the patent's folder, its path), or (None, path)."""
    from .constructions import load_constructions
    p = (base / "constructions.yaml") if base is not None else None
    if p is None or not p.is_file():
        return None, str(p)
    return load_constructions(p), str(p)


def _duplicates(items) -> list[str]:
    """items: (tag, reasoning); one problem per cell whose reasoning repeats an earlier one."""
    seen, out = {}, []
    for tag, text in items:
        key = _norm(text).lower()
        if not key:
            out.append(f"{tag}: no reasoning")
            continue
        if key in seen:
            out.append(f"{tag}: reasoning is identical to {seen[key]}; say what this mechanism or document does")
        else:
            seen[key] = tag
    return out


def check_limitations(bundle: ClaimChartBundle, lim, where: str) -> list[str]:
    out = []
    elements = {e.id: e for c in bundle.claims for e in c.elements}
    for el, subs in lim.elements.items():
        if el not in elements:
            out.append(f"{where}: sub-limitations of {el!r}, which is not a claim element")
            continue
        for s in subs:
            if not s.id.startswith(el[:-1] + ".") :
                out.append(f"{where}: sub-limitation {s.id!r} of {el} must be named {el[:-1]}.N]")
            if _norm(s.text) not in _norm(elements[el].text):
                out.append(f"{where}: sub-limitation {s.id} text is not the words of {el}")
    return out


def check_designs(bundle: ClaimChartBundle, where: str, lim, texts, root: Path | None = None,
                  cset=None, where_cset: str = "constructions.yaml") -> list[str]:
    """Strict rules on the designs chart (chart.yaml)."""
    from engine.mechanisms import REGISTRY
    from .analysis import DESIGN_KINDS
    chart = bundle.chart
    refs = {r.id: r for r in bundle.references}
    out = []
    for m in REGISTRY:
        if getattr(REGISTRY[m], "kind", "") in DESIGN_KINDS and m not in chart.mechanisms:
            out.append(f"{where}: the chart leaves out the later design {m!r}")
    for m in chart.mechanisms:
        kind = getattr(REGISTRY.get(m), "kind", "")
        if kind == "prior-art":
            out.append(f"{where}: mechanism {m!r} models prior art; it belongs in the prior-art analysis, not the "
                       f"designs chart")
    dup = []
    for i, row in enumerate(chart.rows):
        tag = f"{where}: rows[{i}] ({row.element} x {row.mechanism})"
        out += _cite_problems(tag, row.evidence.citations, refs, texts)
        for ev in row.evidence.events:
            out += [f"{tag}: {p}" for p in check_event_filter(ev.kind, ev.where, row.mechanism)
                    if "does not emit" not in p]     # the unknown-type line comes from check_chart
        for c in row.evidence.code:
            why = check_code_ref(c.ref, root)
            if why:
                out.append(f"{tag}: {why}")
        out += _legal(tag, "reasoning", row.reasoning) + _legal(tag, "difference", row.difference) \
            + _review_problems(tag, row)
        out += _parts_problems(tag, row.element, row.status, row.parts, lim.elements, "designs")
        out += _reading_problems(tag, row.status, row.by_construction, row.construction_reasoning, "designs",
                                 cset, where_cset)
        if row.status != "present" and not row.difference.strip() and getattr(REGISTRY.get(row.mechanism), "kind", "") in DESIGN_KINDS:
            out.append(f"{tag}: status {row.status!r} needs a 'difference' (what the design does differently)")
        dup.append((tag, row.reasoning))
    return out + _duplicates(dup)


def check_prior_art(bundle: ClaimChartBundle, pa, where: str, lim, texts, root: Path | None = None,
                    cset=None, where_cset: str = "constructions.yaml") -> list[str]:
    """Strict rules on the prior-art analysis (prior_art.yaml)."""
    from .analysis import executable_models
    out = []
    refs = {r.id: r for r in bundle.references}
    pd = bundle.patent.priority_date
    if pa.patent != bundle.patent.number:
        out.append(f"{where}: is for {pa.patent}, not {bundle.patent.number}")
    for r in pa.references:
        ref = refs.get(r)
        if ref is None:
            out.append(f"{where}: reference {r!r} is not in the reference list")
            continue
        if ref.role != "prior-art":
            out.append(f"{where}: reference {r} has role {ref.role!r}, not prior-art")
        if pd is not None and ref.predates(pd) is not True:
            out.append(f"{where}: reference {r} dated {ref.date} is not before the priority date {pd}")
    for ref in bundle.references:
        if ref.role == "prior-art" and ref.id not in pa.references:
            out.append(f"{where}: prior-art reference {ref.id} has no column in the analysis")
    elements = loaded_elements(bundle)
    seen = set()
    dup = []
    for i, c in enumerate(pa.cells):
        tag = f"{where}: cells[{i}] ({c.element} x {c.reference})"
        if c.element not in elements:
            out.append(f"{tag}: {c.element!r} is not a charted element of a loaded claim")
        if c.reference not in pa.references:
            out.append(f"{tag}: reference {c.reference!r} is not a column of the analysis")
        if (c.element, c.reference) in seen:
            out.append(f"{tag}: duplicate cell")
        seen.add((c.element, c.reference))
        if not c.citations:
            out.append(f"{tag}: no citation of the reference's own text")
        out += _cite_problems(tag, c.citations, refs, texts, pd, prior_art=True)
        if c.reference in refs and not any(x.reference == c.reference or
                                           refs.get(x.reference) and refs[x.reference].supports == c.reference
                                           for x in c.citations):
            out.append(f"{tag}: cites neither {c.reference} nor a document supporting it")
        models = executable_models(c.reference)
        if c.events and not models:
            out.append(f"{tag}: names engine events, but no engine mechanism models {c.reference}")
        for ev in c.events:
            out += [f"{tag}: {p}" for p in check_event_filter(ev.kind, ev.where, models[0] if models else None)]
        for code in c.code:
            why = check_code_ref(code.ref, root)
            if why:
                out.append(f"{tag}: {why}")
        out += _legal(tag, "reasoning", c.reasoning) + _review_problems(tag, c)
        out += _parts_problems(tag, c.element, c.status, c.parts, lim.elements, "prior-art")
        out += _reading_problems(tag, c.status, c.by_construction, c.construction_reasoning, "prior-art",
                                 cset, where_cset)
        dup.append((tag, c.reasoning))
    for el in elements:
        for r in pa.references:
            if (el, r) not in seen:
                out.append(f"{where}: claim element {el} has no cell for reference {r}")
    for j, comb in enumerate(pa.combinations):
        tag = f"{where}: combinations[{j}] ({comb.id})"
        for el, r in comb.covers.items():
            if el not in elements:
                out.append(f"{tag}: covers {el!r}, which is not a charted element")
            if r not in comb.references:
                out.append(f"{tag}: {el} is covered by {r!r}, which is not one of its references")
            elif (el, r) in seen:
                cell = next(c for c in pa.cells if (c.element, c.reference) == (el, r))
                st = _status_under(cell, comb.readings)
                if st != "disclosed":
                    under = (" under " + ", ".join(f"{k}={v}" for k, v in comb.readings.items())
                             if comb.readings and st != cell.status else "")
                    out.append(f"{tag}: says {r} covers {el}, but that cell is {st!r}{under}")
        for cid, alt in comb.readings.items():
            c = cset.get(cid) if cset is not None else None
            if c is None:
                out.append(f"{tag}: reading {cid}={alt}: no construction {cid!r} in {where_cset}")
            elif alt not in [a.id for a in c.alternatives]:
                out.append(f"{tag}: reading {cid}={alt}: construction {cid} has no alternative {alt!r}")
        for r in comb.references:
            if r not in pa.references:
                out.append(f"{tag}: reference {r!r} is not a column of the analysis")
        out += _legal(tag, "question", comb.question) + _review_problems(tag, comb)
    return out + _duplicates(dup)


def _review_problems(tag: str, x) -> list[str]:
    """The review state of a cell or combination (:class:`claims.model.Reviewed`): its comment
    states no legal conclusion, and a status other than draft names a reviewer and a date."""
    out = _legal(tag, "review comment", x.review_comment)
    if x.reviewer_status != "draft" and not (x.reviewer and x.reviewed_on):
        out.append(f"{tag}: reviewer status {x.reviewer_status!r} needs a reviewer and a date")
    return out


def check_references(bundle: ClaimChartBundle, pa, where: str, texts) -> list[str]:
    """Every listed reference is cited somewhere; stored texts belong to listed references."""
    from engine.mechanisms import REGISTRY
    cited = set()
    if bundle.chart is not None:
        cited |= {c.reference for r in bundle.chart.rows for c in r.evidence.citations}
    if pa is not None:
        cited |= {c.reference for x in pa.cells for c in x.citations}
    used_by_models = {getattr(cls, "reference", "") for cls in REGISTRY.values()}
    out = []
    ids = {r.id for r in bundle.references}
    for r in bundle.references:
        if r.id not in cited:
            out.append(f"{where}: reference {r.id} is cited by no row; cite it or remove it"
                       + (" (an engine mechanism names it, so cite it)" if r.id in used_by_models else ""))
        if r.supports and r.supports not in ids:
            out.append(f"{where}: reference {r.id} supports {r.supports!r}, which is not listed")
    for m, cls in REGISTRY.items():             # the engine's references belong to the patent analysed
        ref = getattr(cls, "reference", "")
        if pa is not None and ref and ref not in ids:
            out.append(f"{where}: engine mechanism {m} names reference {ref!r}, which is not listed")
    for m, cls in REGISTRY.items():         # an executable model's own citations are checkable too
        for c in getattr(cls, "citations", ()):
            ref, pin, quote = c[0], c[1], c[2]
            if ref in texts and quote:
                why = texts[ref].find(quote, pin)
                if why:
                    out.append(f"engine mechanism {m}: citation of {ref}: {why}")
    for rid, t in texts.items():
        if rid not in ids:
            out.append(f"{t.path}: stored text for {rid!r}, which is not a listed reference")
        out += t.problems
    return out


def check_strict(bundle: ClaimChartBundle, where: str = "chart", base: Path | None = None,
                 root: Path | None = None) -> list[str]:
    """The strict rules on everything beside the claims: the designs chart, the prior-art
    analysis, the sub-limitations, the references and their stored texts."""
    from .analysis import data_dir, load_limitations, load_prior_art
    base = data_dir(bundle, base)
    lim = load_limitations(bundle, base)
    texts = stored_texts(base)
    pa = load_prior_art(bundle, base)
    cset, where_cset = _constructions_beside(base)
    out = check_limitations(bundle, lim, str(base / "limitations.yaml"))
    if bundle.chart is not None:
        out += check_designs(bundle, where, lim, texts, root, cset, where_cset)
    if pa is not None:
        out += check_prior_art(bundle, pa, str(base / "prior_art.yaml"), lim, texts, root, cset, where_cset)
    out += check_references(bundle, pa, str(base / "references.yaml"), texts)
    return out
