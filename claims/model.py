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
ReviewerStatus = Literal["draft", "reviewed", "approved"]
DateKind = Literal["publication", "post", "commit", "release", "filing", "priority", "grant", "conference"]
Role = Literal["preamble", "limitation", "reference"]

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


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
    title: Sourced
    assignee: Sourced
    inventors: list[str]
    inventors_source: str = ""
    application_number: Sourced
    filing_date: dt.date
    filing_date_source: str = ""
    priority_claims: list[PriorityClaim] = Field(default_factory=list)
    grant_date: dt.date | None = None
    grant_date_source: str = ""
    cpc: list[str] = Field(default_factory=list)
    cpc_source: str = ""
    abstract: Sourced | None = None
    claims_total: int | None = None

    @property
    def priority_date(self) -> dt.date:
        """The earliest priority date claimed (else the filing date)."""
        dates = [p.date for p in self.priority_claims] + [self.filing_date]
        return min(dates)

    @property
    def display_number(self) -> str:
        m = re.match(r"([A-Z]{2})(\d+)", self.number)
        if m and m.group(1) == "US":
            return f"US {int(m.group(2)):,} {self.kind}"
        return f"{self.number} {self.kind}"


class Element(Strict):
    id: str                         # "1[pre]", "1[a]"
    role: Role
    text: str
    start: int                      # character offsets in the claim text
    end: int

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
            return [e for e in self.elements if e.role != "reference"]
        return [e for e in self.elements if e.role == "limitation"]


class Reference(Strict):
    id: str
    title: str
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
    pinpoint: str                   # Message-ID, col:line, file:function@commit, section
    quote: str = ""


class Evidence(Strict):
    events: list[EventEvidence] = Field(default_factory=list)
    code: list[CodeEvidence] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)


class ChartRow(Strict):
    element: str
    mechanism: str
    status: Status
    reasoning: str
    evidence: Evidence = Field(default_factory=Evidence)
    reviewer_status: ReviewerStatus = "draft"
    reviewer: str = ""
    reviewed_on: dt.date | None = None

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
