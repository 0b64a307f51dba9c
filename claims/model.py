"""Patents, claims, references and claim charts as validated data (one schema).

``pagemerge claims schema`` prints the JSON Schema of :class:`ClaimChartBundle` for editors
and non-Python users. Identifiers are strings (``"1[pre]"``, ``"1[a]"``); YAML files must quote
them, because YAML 1.1 reads ``no``/``yes``/``on``/``off`` as booleans and ``1.10`` as a number,
and the loader rejects any id that is not a string.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Status = Literal["present", "absent", "partial", "undetermined"]
ReviewerStatus = Literal["draft", "reviewed", "disputed"]
#: what an earlier reference discloses of an element (prior-art analysis)
DisclosureStatus = Literal["disclosed", "partly disclosed", "not disclosed", "undetermined"]
DateKind = Literal["publication", "post", "commit", "release", "filing", "priority", "grant", "conference"]
Role = Literal["preamble", "limitation", "reference"]

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
#: a patent number as stored and as a file name: country, an optional series (D, PP, RE ...), digits
PATENT_NUMBER = re.compile(r"[A-Z]{2}(?:D|PP|RE|RX|H|T|AI)?[0-9]{1,11}")


def quoted_string(v, what: str = "id"):
    """Ids and names must come in as strings: YAML 1.1 reads unquoted ``no``/``yes``/``on`` as
    booleans and ``1.10`` as a number, so anything else means the file forgot its quotes."""
    if not isinstance(v, str):
        raise ValueError(f"{what} {v!r} must be a quoted string (YAML 1.1 reads some ids as numbers or booleans)")
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sourced(Strict):
    """A value and where it came from."""
    value: str
    source: str = ""


class PriorityClaim(Strict):
    kind: str                       # e.g. "US provisional"
    number: str
    date: dt.date
    source: str = ""


class Patent(Strict):
    number: str                     # "US9977598"
    kind: str                       # "B2"
    title: Sourced = Field(default_factory=lambda: Sourced(value=""))
    assignee: Sourced = Field(default_factory=lambda: Sourced(value=""))
    inventors: list[str] = Field(default_factory=list)
    inventors_source: str = ""
    application_number: Sourced = Field(default_factory=lambda: Sourced(value=""))
    filing_date: dt.date | None = None   # None only for a patent imported from a document that does not give it
    filing_date_source: str = ""
    priority_claims: list[PriorityClaim] = Field(default_factory=list)
    grant_date: dt.date | None = None
    grant_date_source: str = ""
    cpc: list[str] = Field(default_factory=list)
    cpc_source: str = ""
    abstract: Sourced | None = None
    claims_total: int | None = None
    publication: Sourced | None = None       # the pre-grant publication ("US 2016/0117116 A1, 2016-04-28")
    family: list[str] = Field(default_factory=list)   # other members of the patent family
    family_source: str = ""
    ipc: list[str] = Field(default_factory=list)
    ipc_source: str = ""
    pta_days: int | None = None              # patent-term adjustment, when a source gives it

    def term(self) -> dict:
        """The nominal term: 20 years from the earliest non-provisional filing date (35 U.S.C.
        154(a)(2); a provisional's date does not count), plus any patent-term adjustment, which
        is stated as unknown unless a source gives it. Subject to maintenance fees and any
        terminal disclaimer; a computation for orientation, not a legal determination."""
        if self.filing_date is None:
            return {"nominal_end": None, "basis": "the non-provisional filing date is not known", "pta": None,
                    "end": None, "note": ""}
        f = self.filing_date
        try:
            nominal = f.replace(year=f.year + 20)
        except ValueError:                    # 29 February
            nominal = f.replace(year=f.year + 20, day=28)
        pta = self.pta_days
        return {"nominal_end": nominal.isoformat(),
                "basis": f"20 years from the non-provisional filing date {f.isoformat()} (not from a provisional)",
                "pta": pta, "end": (nominal + dt.timedelta(days=pta)).isoformat() if pta is not None else None,
                "note": ("plus a patent-term adjustment of unknown length (not found in the sources)" if pta is None
                         else f"plus {pta} days of patent-term adjustment")
                + "; subject to maintenance fees and any terminal disclaimer"}

    @field_validator("number", mode="before")
    @classmethod
    def _number_ok(cls, v):
        v = quoted_string(v, "patent number")
        if not PATENT_NUMBER.fullmatch(v):
            raise ValueError(f"patent number {v[:40]!r} must look like 'US9977598' (country code and digits)")
        return v

    @property
    def priority_date(self) -> dt.date | None:
        """The earliest priority date claimed (else the filing date); None if neither is known."""
        dates = [p.date for p in self.priority_claims] + ([self.filing_date] if self.filing_date else [])
        return min(dates) if dates else None

    @property
    def display_number(self) -> str:
        m = re.match(r"([A-Z]{2})(\d+)", self.number)
        if m and m.group(1) == "US":
            return f"US {int(m.group(2)):,} {self.kind}"
        return f"{self.number} {self.kind}"


class Element(Strict):
    id: str                         # "1[pre]", "1[a]", nested "1[a.i]", "1[a.i.1]"
    role: Role
    text: str
    start: int                      # character offsets in the claim text
    end: int
    parent: str = ""                # the enclosing element's id, for nested limitations
    means_plus_function: bool = False   # a 35 U.S.C. 112(f) candidate ("means for" / "step for" + function)

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_string(cls, v):
        return quoted_string(v, "element id")


class Claim(Strict):
    number: int
    text: str
    loaded: bool = True             # False: not yet loaded (text unknown here)
    independent: bool | None = True  # None while the claim is not loaded
    parents: list[int] = Field(default_factory=list)
    preamble: str = ""
    transition: str = ""            # "comprising", "consisting of", ...
    transition_type: Literal["open", "closed", "partially closed", ""] = ""
    elements: list[Element] = Field(default_factory=list)
    source: str = ""
    pinpoint: str = ""              # where the claim is printed ("6:49-6:68", column:line, for a PDF)
    how_to_load: str = ""

    @model_validator(mode="after")
    def _offsets(self):
        for e in self.elements:
            if not (0 <= e.start <= e.end <= len(self.text)) or self.text[e.start:e.end] != e.text:
                raise ValueError(f"claim {self.number}: element {e.id} does not match its offsets in the claim text")
        return self

    def charted_elements(self) -> list[Element]:
        """Independent claims chart every element; dependent claims only what they add."""
        if not self.loaded:
            return []
        if self.independent:
            return [e for e in self.elements if e.role != "reference" and not e.parent]
        return [e for e in self.elements if e.role == "limitation" and not e.parent]


class Reference(Strict):
    id: str
    title: str
    #: prior-art (cut-off checked against the priority date), supporting (a further document on
    #: a prior-art system: ``supports`` names it), design (a later design), context, patent
    role: Literal["prior-art", "supporting", "design", "context", "patent"] = "context"
    supports: str = ""
    version: str = ""               # the exact version read ("v2.6.32", "OSDI 2002 HTML edition")
    authors: list[str] = Field(default_factory=list)
    date: str                       # YYYY, YYYY-MM or YYYY-MM-DD (precision as known)
    date_kind: DateKind
    link: str = ""
    message_id: str = ""
    commit: str = ""
    note: str = ""

    @field_validator("date", mode="before")
    @classmethod
    def _date_ok(cls, v):
        if isinstance(v, (dt.date,)):
            v = v.isoformat()
        if not isinstance(v, str) or not _DATE.match(v):
            raise ValueError(f"date {v!r} must be YYYY, YYYY-MM or YYYY-MM-DD (quoted)")
        return v

    def date_range(self) -> tuple[dt.date, dt.date]:
        parts = [int(x) for x in self.date.split("-")]
        if len(parts) == 3:
            d = dt.date(*parts)
            return d, d
        if len(parts) == 2:
            y, m = parts
            last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1))
            return dt.date(y, m, 1), last
        return dt.date(parts[0], 1, 1), dt.date(parts[0], 12, 31)

    def predates(self, priority: dt.date) -> bool | None:
        """True if every day the date can mean is before ``priority``, False if none is,
        None if the date's precision straddles it. A flagged suggestion, never a conclusion."""
        if priority is None:
            return None
        lo, hi = self.date_range()
        if hi < priority:
            return True
        if lo >= priority:
            return False
        return None


class EventEvidence(Strict):
    kind: str                       # an engine event type (checked against the catalogue)
    where: dict[str, str | int | bool] = Field(default_factory=dict)   # field filter
    shows: str = ""


class CodeEvidence(Strict):
    ref: str                        # "file:function" (engine) or "tree path function" (kernel)
    note: str = ""


class Citation(Strict):
    reference: str                  # Reference.id
    pinpoint: str = ""              # tag + file:lines, section/page, column:line, paragraph, Message-ID
    quote: str = ""                 # a short quote from the reference's own text


class Evidence(Strict):
    events: list[EventEvidence] = Field(default_factory=list)
    code: list[CodeEvidence] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)


class Reviewed(Strict):
    """The review state of a chart cell, a prior-art cell or a combination: who reviewed it,
    when, and what they said. It survives regeneration of the analyses; a status other than
    "draft" needs a reviewer and a date (``claims check``)."""
    reviewer_status: ReviewerStatus = "draft"
    reviewer: str = ""
    reviewed_on: dt.date | None = None
    review_comment: str = ""


class ChartRow(Reviewed):
    element: str
    mechanism: str
    status: Status
    reasoning: str
    evidence: Evidence = Field(default_factory=Evidence)
    #: sub-limitation id -> status, for an element split into sub-limitations ("1[b.1]")
    parts: dict[str, Status] = Field(default_factory=dict)
    #: what the design does differently, in neutral technical words ("does not compress before
    #: comparing"); required where the status is not present
    difference: str = ""
    #: where the status turns on a claim construction (constructions.yaml): construction id ->
    #: {alternative id -> the status under that alternative}; the headline status is then
    #: "undetermined" unless every alternative gives the same status
    by_construction: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: construction id -> what each of its alternatives means for this cell (every alternative named)
    construction_reasoning: dict[str, str] = Field(default_factory=dict)

    @field_validator("element", "mechanism", mode="before")
    @classmethod
    def _str(cls, v):
        return quoted_string(v, "element or mechanism")


class Chart(Strict):
    patent: str
    title: str = ""
    claims: list[int]
    mechanisms: list[str]
    construction_notes: dict[str, str] = Field(default_factory=dict)
    rows: list[ChartRow]
    disclaimer: str = ("Technical evidence for review, not legal advice. It states no conclusion on "
                       "infringement or validity.")


class ClaimChartBundle(Strict):
    """Everything a chart needs: the patent, its claims, the references, the chart."""
    patent: Patent
    claims: list[Claim]
    references: list[Reference]
    chart: Chart | None = None


class SubLimitation(Strict):
    """A part of a claim element that a reference or design may meet on its own
    (``1[b]`` -> ``1[b.1]`` compressing, ``1[b.2]`` hash of the compressed page). ``text`` is
    the element's own words for that part, verbatim."""
    id: str
    text: str

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_string(cls, v):
        return quoted_string(v, "sub-limitation id")


class Limitations(Strict):
    """``limitations.yaml``: the sub-limitations of each element, shared by both analyses."""
    patent: str
    elements: dict[str, list[SubLimitation]] = Field(default_factory=dict)


class PriorArtCell(Reviewed):
    """One element against one reference dated before the priority date."""
    element: str
    reference: str
    status: DisclosureStatus
    parts: dict[str, DisclosureStatus] = Field(default_factory=dict)
    reasoning: str
    citations: list[Citation] = Field(default_factory=list)
    #: events of the reference's executable model (the engine mechanism whose ``reference`` is
    #: this reference), counted in a run; the mechanism is found by reference, never typed here
    events: list[EventEvidence] = Field(default_factory=list)
    code: list[CodeEvidence] = Field(default_factory=list)
    #: as ChartRow.by_construction, with disclosure statuses
    by_construction: dict[str, dict[str, str]] = Field(default_factory=dict)
    construction_reasoning: dict[str, str] = Field(default_factory=dict)

    @field_validator("element", "reference", mode="before")
    @classmethod
    def _str(cls, v):
        return quoted_string(v, "element or reference")


class Combination(Reviewed):
    """A candidate combination of references, flagged for a reviewer: which reference covers
    which element, and the question the reviewer must answer about putting them together."""
    id: str
    references: list[str]
    covers: dict[str, str]          # element id -> reference id
    question: str
    #: construction id -> alternative id: the readings under which the covered cells hold, where
    #: a covered cell's status turns on a construction (constructions.yaml)
    readings: dict[str, str] = Field(default_factory=dict)


class PriorArtAnalysis(Strict):
    """``prior_art.yaml``: every element of every loaded claim against every reference dated
    before the priority date, then candidate combinations."""
    patent: str
    title: str = ""
    references: list[str]
    cells: list[PriorArtCell]
    combinations: list[Combination] = Field(default_factory=list)
    disclaimer: str = ("Technical evidence for review, not legal advice. Statuses say what each reference "
                       "describes, not what follows from it in law.")
