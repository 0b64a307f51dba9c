"""``pagemerge claims ...``: show, import, check, schema (defined in :mod:`claims.cli`)."""
from __future__ import annotations


def add_parsers(sub) -> None:
    from claims.cli import add_parser
    add_parser(sub)
