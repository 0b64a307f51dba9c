"""From claim text to structure: dependency, preamble, transition, elements with offsets.

* Dependency comes only from real reference phrases ("as claimed in claim 1", "of claim 3",
  "according to any one of claims 1 to 4", "in claim 2 or 3"). A number alone is never
  taken as a reference.
* The transition is the first "comprising" / "consisting of" / "consisting essentially of" /
  "including" / "wherein" after the preamble subject. "comprising" and "including" are open,
  "consisting of" is closed, and "consisting essentially of" is partially closed.
* After the transition, limitations are split at semicolons, the way claims separate them
  (a trailing "and" stays with its limitation). Element ids are ``N[pre]``, then ``N[a]``,
  ``N[b]`` and so on. Each keeps its character offsets in the claim text, so a citation can
  point into the exact words.
"""
from __future__ import annotations

import re

from .model import Claim, Element

_REF = re.compile(
    r"\b(?:as\s+claimed\s+in|as\s+recited\s+in|as\s+defined\s+in|as\s+set\s+forth\s+in|as\s+described\s+in|"
    r"according\s+to|as\s+in|of|in|by)\s+(?:any\s+(?:one\s+)?of\s+)?(?:the\s+preceding\s+)?claims?\s+"
    r"(\d+)((?:\s*(?:,|or|and|-|to|through)\s*(?:claim\s+)?\d+)*)", re.I)
_NUM = re.compile(r"\d+")
_RANGE = re.compile(r"(\d+)\s*(?:-|to|through)\s*(\d+)")
_TRANSITION = re.compile(r"\b(consisting\s+essentially\s+of|consisting\s+of|comprising|including|"
                         r"characterized\s+in\s+that)\b(\s*:)?", re.I)
_TYPE = {"comprising": "open", "comprises": "open", "including": "open", "includes": "open",
         "consisting of": "closed", "consisting essentially of": "partially closed",
         "characterized in that": "open"}


def element_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return s


def find_parents(text: str, number: int) -> list[int]:
    """Claims this claim refers back to, from reference phrases only."""
    head = text[:400]
    parents: list[int] = []
    for m in _REF.finditer(head):
        span = m.group(0)
        for a, b in _RANGE.findall(span):
            parents.extend(range(int(a), int(b) + 1))
        for n in _NUM.findall(_RANGE.sub(" ", span)):
            parents.append(int(n))
    out = sorted({p for p in parents if 0 < p < number})
    return out


def parse_claim(number: int, text: str, source: str = "", elements: list[tuple[int, int]] | None = None) -> Claim:
    """Structure one claim. ``elements``: explicit (start, end) spans of limitations (from
    XML nesting); without them, limitations are split at semicolons after the transition."""
    text = text.strip()
    parents = find_parents(text, number)
    dependent = bool(parents)
    # the transition that opens the body: the first one followed by a colon, else the first one
    # (finite verbs such as "comprises" inside a wherein-clause are not transitions)
    found = list(_TRANSITION.finditer(text))
    m = next((x for x in found if x.group(2)), found[0] if found else None)
    transition = ""
    pre_end = 0
    if m:
        transition = re.sub(r"\s+", " ", m.group(1).lower())
        pre_end = m.end()
    els: list[Element] = []
    if pre_end:
        els.append(Element(id=f"{number}[pre]", role="reference" if dependent else "preamble",
                           text=text[:pre_end], start=0, end=pre_end))
    spans = elements if elements is not None else _split_limitations(text, pre_end)
    for i, (s, e) in enumerate(spans):
        els.append(Element(id=f"{number}[{element_letter(i)}]", role="limitation", text=text[s:e], start=s, end=e))
    return Claim(number=number, text=text, independent=not dependent, parents=parents,
                 preamble=text[:pre_end].strip(), transition=transition,
                 transition_type=_TYPE.get(transition, "") if transition else "", elements=els, source=source)


def _split_limitations(text: str, start: int) -> list[tuple[int, int]]:
    spans = []
    pos = start
    n = len(text)
    while pos < n:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            break
        semi = text.find(";", pos)
        end = n if semi < 0 else semi + 1
        tail = re.match(r"\s+(and|or)\b", text[end:])
        if tail and semi >= 0:                  # "...; and" stays with the limitation it ends
            end += tail.end()
        spans.append((pos, end))
        pos = end
    return spans


_CLAIM_START = re.compile(r"(?m)^\s*(\d{1,3})\s*\.\s+(?=[A-Z])")
_HEADERS = re.compile(r"(what\s+is\s+claimed\s+is|we\s+claim|i\s+claim|the\s+invention\s+claimed\s+is|"
                      r"claims?\s*:)\s*:?", re.I)


def split_claims_text(text: str) -> list[tuple[int, str]]:
    """Split pasted claims ("1. A method ... 2. The method of claim 1 ...") into (number, text).

    Numbers must run 1, 2, 3 ... in order; a number that breaks the sequence is taken as part
    of the text, not as a new claim."""
    m = _HEADERS.search(text)
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
        body = re.sub(r"\s+", " ", text[body_start:end]).strip()
        out.append((num, f"{num}. {body}"))
    return out


def _unwrap(text: str) -> str:
    """Join hyphenated line breaks ("swap-\\nping" -> "swapping") and keep claim starts on
    their own lines."""
    text = re.sub(r"(\w)-\n\s*([a-z])", r"\1\2", text)
    text = re.sub(r"(?<=[.;:])\s+(?=\d{1,3}\s*\.\s+[A-Z])", "\n", text)
    return text


def strip_number(text: str) -> str:
    return re.sub(r"^\s*\d{1,3}\s*\.\s*", "", text)
