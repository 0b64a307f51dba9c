"""From claim text to structure: dependency, preamble, transition, elements with offsets.

* Dependency comes only from real reference phrases: "as claimed in claim 1", "of claim 3",
  "according to any one of claims 1 to 4", "claims 1, 2, and 4", "of either claim 1 or claim 2",
  "according to any preceding claim". OCR's digit confusions inside a claim number are read
  as digits ("claim l" is claim 1, "claim lO" claim 10, "claim : 3" claim 3). A number alone is
  never a reference, and neither is a reference to another document's claim ("claim 1 of U.S.
  Pat. No. 8,000,000", "claim 3 of the related application") nor one to a claim that does not
  come before this one.
* The body starts at the transition: "comprising" / "consisting of" / "consisting essentially
  of" / "including" / "characterized in that", the first one followed by a colon, else the
  first one. A dependent claim's reference part ends at the first "wherein", "further
  comprising", "comprising", "characterized in that" or colon after its reference. A claim
  with no transition word but a colon ("... cause a processor to: a; b") keeps the text up to
  the colon as its preamble. "comprising" and "including" are open, "consisting of" is
  closed, "consisting essentially of" is partially closed.
* After the transition, limitations are split at semicolons, the way claims separate them (a
  trailing "and"/"or" stays with its limitation; a bare connective such as "wherein:" is
  joined to the limitation it introduces). Element ids are ``N[pre]``, then ``N[a]``,
  ``N[b]`` ...; nested limitations (from XML) are ``N[a.i]``, ``N[a.ii]``, ``N[a.i.1]``. Each
  keeps its character offsets in the claim text, so a citation can point into the exact words.
* Limitations in "means for" / "step for" + function form are flagged as 35 U.S.C. 112(f)
  candidates, for a reviewer to construe.

Everything here runs in time linear in the text (a multi-megabyte claim parses in about the
time it takes to scan it), because a pasted or OCR'd document can be arbitrarily long.
"""
from __future__ import annotations

import re

from .model import Claim, Element

# a claim number as printed or as OCR read it: digits with l/I/| for 1 and O/o for 0 inside
_N = r"(?:[0-9lI|][0-9lI|Oo]*)(?![A-Za-z0-9])"
_SEP = r"(?:\s*,\s*(?:and|or)\s+|\s*,\s*|\s+(?:and|or)\s+|\s*(?:-|\u2013|\u2014)\s*|\s+(?:to|through|thru)\s+)"
_LEAD = (r"(?:as\s+(?:claimed|recited|defined|set\s+forth|described|specified|in)\s+in|as\s+in|according\s+to|"
         r"in\s+accordance\s+with|(?:defined|recited|claimed|described|specified)\s+(?:by|in)|set\s+forth\s+in|"
         r"as\s+per|per|of|in|by|under|to)")
_QUANT = r"(?:(?:any|either|each|all|one)\s+(?:one\s+)?(?:of\s+)?(?:the\s+)?)?(?:preceding\s+|previous\s+|foregoing\s+|above\s+)?"
_REF = re.compile(r"\b" + _LEAD + r"\s+" + _QUANT + r"claims?\s*[:.]?\s*(" + _N + r"(?:" + _SEP + r"(?:claims?\s+)?" + _N
                  + r")*)", re.I)
_ANY_PRECEDING = re.compile(r"\b(?:any|all|each)\s+(?:one\s+)?(?:of\s+)?(?:the\s+)?(?:preceding|previous|foregoing|prior|"
                            r"above)\s+claims?\b(?!\s*[:.]?\s*" + _N + ")", re.I)
# "claim 1 of U.S. Pat. No. ...", "claim 3 of the related application", "claim 2 in U.S. ..."; but not
# "claim 1 of the present invention" nor "claim 1 in which ..."
_ELSEWHERE = re.compile(r"\s*,?\s*(?:of\s+(?!claims?\b|(?:the\s+)?(?:present|this|instant)\s+(?:invention|application|"
                        r"disclosure|patent)\b)|in\s+(?:U\.?\s?S\.?|[A-Z]{2}\s*\d|(?:the\s+|an?\s+)?(?:related|parent|"
                        r"co-?pending|prior|provisional|earlier|other|another|foreign)\b))", re.I)
_NUMTOK = re.compile(_N)
_OCR_DIGIT = str.maketrans({"l": "1", "I": "1", "|": "1", "O": "0", "o": "0"})

_TRANSITION = re.compile(r"\b(consisting\s+essentially\s+of|consisting\s+of|comprising|including|"
                         r"characterized\s+in\s+that|characterised\s+in\s+that)\b(\s*:)?", re.I)
_DEP_BODY = re.compile(r"\b(wherein|whereby|further\s+comprising|further\s+including|comprising|including|"
                       r"characteri[sz]ed\s+in\s+that|in\s+which)\b\s*:?|:", re.I)
_TYPE = {"comprising": "open", "including": "open", "characterized in that": "open", "characterised in that": "open",
         "consisting of": "closed", "consisting essentially of": "partially closed"}
_MEANS = re.compile(r"\b(?:means|step)\s+for\s+(?!example\b|instance\b)[a-z]+", re.I)
_CONNECTIVE = re.compile(r"\s*(?:wherein|whereby|where|in\s+which|such\s+that|and|or|further\s+comprising|comprising)"
                         r"\s*[:,]?\s*\Z", re.I)
_AND_OR = re.compile(r"\s+(?:and|or)\b")


def element_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return s


def roman(i: int) -> str:
    """1 -> i, 4 -> iv, 14 -> xiv."""
    out, n = "", i
    for v, r in ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"), (40, "xl"),
                 (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= v:
            out += r
            n -= v
    return out


def level_label(level: int, i: int) -> str:
    """The i-th (0-based) label at nesting level 1 (a, b ...), 2 (i, ii ...), 3 (1, 2 ...)."""
    if level == 1:
        return element_letter(i)
    if level == 2:
        return roman(i + 1)
    if level == 3:
        return str(i + 1)
    return element_letter(i).upper()


def _claim_number(tok: str) -> int | None:
    t = tok.translate(_OCR_DIGIT)
    return int(t) if t.isdigit() and len(t) <= 4 else None


def find_parents(text: str, number: int) -> list[int]:
    """Claims this claim refers back to, from reference phrases only (see the module doc)."""
    parents: set[int] = set()
    for m in _REF.finditer(text):
        if _ELSEWHERE.match(text, m.end()):
            continue                                   # another document's claim, or not a claim at all
        span = m.group(1)
        toks = list(_NUMTOK.finditer(span))
        nums = [_claim_number(t.group(0)) for t in toks]
        for k, (t, n) in enumerate(zip(toks, nums)):
            if n is None:
                continue
            parents.add(n)
            if k + 1 < len(toks) and nums[k + 1] is not None:
                between = span[t.end():toks[k + 1].start()]
                if re.fullmatch(r"\s*(?:-|\u2013|\u2014|to|through|thru)\s*", between, re.I) and nums[k + 1] - n < 1000:
                    parents.update(range(n, nums[k + 1] + 1))
    if _ANY_PRECEDING.search(text):
        parents.update(range(1, number))
    return sorted(p for p in parents if 0 < p < number)


def means_plus_function(text: str) -> bool:
    """A 35 U.S.C. 112(f) candidate: "means for" / "step for" followed by a function."""
    return bool(_MEANS.search(text))


def _body_start(text: str, dependent: bool) -> tuple[int, str]:
    """Where the body begins (end of the preamble or reference part) and the transition."""
    if dependent:
        ref = _REF.search(text) or _ANY_PRECEDING.search(text)
        early = _TRANSITION.search(text)
        if ref is None or early is None or ref.start() < early.start():
            # "The method of claim 1, wherein ..." (a reference in the opening, as usual)
            m = _DEP_BODY.search(text, ref.end() if ref else 0)
            if m:
                word = re.sub(r"\s+", " ", (m.group(1) or "").lower()).removeprefix("further ")
                return m.end(), word
            return 0, ""
        # "A device comprising ... the material according to claim 1": the transition leads
    found = None
    first = None
    for x in _TRANSITION.finditer(text):
        if first is None:
            first = x
        if x.group(2):
            found = x
            break
    m = found or first
    if m is not None:
        return m.end(), re.sub(r"\s+", " ", m.group(1).lower())
    colon = text.find(":")
    if colon > 0:
        return colon + 1, ""
    return 0, ""


def parse_claim(number: int, text: str, source: str = "", elements: list[tuple] | None = None,
                parents: list[int] | None = None, preamble_end: int | None = None) -> Claim:
    """Structure one claim.

    ``elements``: explicit spans of limitations, ``(start, end)`` or ``(start, end, label, parent)``
    (from XML nesting); without them, limitations are split at semicolons after the transition.
    ``parents``: the dependency when the source states it (XML ``claim-ref``); otherwise it is
    read from the reference phrases. ``preamble_end``: where the preamble ends, when the
    source's structure says so."""
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    if elements is not None and lead:
        elements = [(s - lead, e - lead, *rest) for s, e, *rest in elements]
        if preamble_end is not None:
            preamble_end -= lead
    if parents is None:
        parents = find_parents(text, number)
    dependent = bool(parents)
    pre_end, transition = _body_start(text, dependent)
    if preamble_end is not None:
        pre_end = preamble_end
        found = list(_TRANSITION.finditer(text, 0, max(pre_end, 0)))
        m = next((x for x in found if x.group(2)), found[0] if found else None)
        transition = re.sub(r"\s+", " ", m.group(1).lower()) if m else transition
    while pre_end > 0 and text[pre_end - 1].isspace():
        pre_end -= 1
    els: list[Element] = []
    if pre_end:
        els.append(Element(id=f"{number}[pre]", role="reference" if dependent else "preamble",
                           text=text[:pre_end], start=0, end=pre_end))
    if elements is None:
        spans = [(s, e, element_letter(i), "") for i, (s, e) in enumerate(_split_limitations(text, pre_end))]
    else:
        spans = [(sp[0], sp[1], element_letter(i), "") if len(sp) == 2 else tuple(sp) for i, sp in enumerate(elements)]
    for s, e, label, parent in spans:
        seg = text[s:e]
        els.append(Element(id=f"{number}[{label}]", role="limitation", text=seg, start=s, end=e,
                           parent=f"{number}[{parent}]" if parent else "",
                           means_plus_function=means_plus_function(seg)))
    return Claim(number=number, text=text, independent=not dependent, parents=sorted(set(parents)),
                 preamble=text[:pre_end].strip(), transition=transition if transition in _TYPE else "",
                 transition_type=_TYPE.get(transition, ""), elements=els, source=source)


_SEMI = re.compile(r";")
_WS = re.compile(r"\s*")


def _split_limitations(text: str, start: int) -> list[tuple[int, int]]:
    """Spans of the limitations after ``start``, split at semicolons; one pass over the text."""
    spans: list[tuple[int, int]] = []
    pos = start
    n = len(text)
    while pos < n:
        pos = _WS.match(text, pos).end()
        if pos >= n:
            break
        semi = _SEMI.search(text, pos)
        end = n if semi is None else semi.end()
        if semi is not None:
            tail = _AND_OR.match(text, end)
            if tail:                                  # "...; and" stays with the limitation it ends
                end = tail.end()
        # a bare connective ("wherein:") is no limitation of its own: it opens the next one
        if _CONNECTIVE.match(text[pos:end]) and end < n:
            nxt = _SEMI.search(text, end)
            end = n if nxt is None else nxt.end()
        spans.append((pos, end))
        pos = end
    return spans


_CLAIM_START = re.compile(r"(?m)^[ \t]*(\d{1,3})[ \t]*\.[ \t]+(?=[A-Z\"'(])")
_HEADERS = re.compile(r"(what\s+is\s+claimed\s+is|we\s+claim|i\s+claim|the\s+invention\s+claimed\s+is|"
                      r"claims?\s*:)\s*:?", re.I)


def split_claims_text(text: str) -> list[tuple[int, str]]:
    """Split pasted claims ("1. A method ... 2. The method of claim 1 ...") into (number, text).

    Numbers must run 1, 2, 3 ... in order; a number that breaks the sequence is taken as part
    of the text, not as a new claim."""
    m = _HEADERS.search(text, 0, 2000)
    if m and m.start() < 400:
        text = text[m.end():]
    text = _unwrap(text)
    out: list[tuple[int, str]] = []
    starts = []
    expect = 1
    for mm in _CLAIM_START.finditer(text):
        if int(mm.group(1)) == expect:
            starts.append((expect, mm.start(), mm.end()))
            expect += 1
    for k, (num, _s, body_start) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else len(text)
        body = " ".join(text[body_start:end].split())
        out.append((num, f"{num}. {body}"))
    return out


def _unwrap(text: str) -> str:
    """Join hyphenated line breaks ("swap-\\nping" -> "swapping") and keep claim starts on
    their own lines."""
    text = re.sub(r"(\w)-\n[ \t]*([a-z])", r"\1\2", text)
    text = re.sub(r"(?<=[.;:])[ \t\r\n]+(?=\d{1,3}[ \t]*\.[ \t]+[A-Z])", "\n", text)
    return text


def strip_number(text: str) -> str:
    return re.sub(r"^\s*\d{1,3}\s*\.\s*", "", text, count=1)


def check_claims(bundle, where: str = "claims") -> list[str]:
    """The claims themselves: numbered 1, 2, 3 ... once each, every parent an earlier claim of
    the patent, no element that is a bare connective, and as many claims as the patent says."""
    problems = []
    nums = [c.number for c in bundle.claims]
    if nums != list(range(1, len(nums) + 1)):
        problems.append(f"{where}: claims are numbered {_ranges(nums)}, not 1 to {len(nums)} once each")
    known = set(nums)
    for c in bundle.claims:
        if not c.loaded:
            continue
        for p in c.parents:
            if p not in known or p >= c.number:
                problems.append(f"{where}: claim {c.number} depends on claim {p}, which is not an earlier claim")
        if c.independent and c.parents:
            problems.append(f"{where}: claim {c.number} is marked independent but has parents {c.parents}")
        for e in c.elements:
            if e.role == "limitation" and _CONNECTIVE.match(e.text):
                problems.append(f"{where}: element {e.id} is only the connective {e.text.strip()!r}")
            if e.parent and e.parent not in {x.id for x in c.elements}:
                problems.append(f"{where}: element {e.id} names a parent element {e.parent} that does not exist")
    total = bundle.patent.claims_total
    if total is not None and total != len(nums):
        problems.append(f"{where}: the patent has {total} claims, but {len(nums)} are listed")
    return problems


def _ranges(nums: list[int]) -> str:
    return ", ".join(map(str, nums[:20])) + (" ..." if len(nums) > 20 else "")
