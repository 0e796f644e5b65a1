"""County codes of their own for each test: unique within a session, so no two tests share a village."""

from __future__ import annotations

import itertools
import random

_counties = itertools.count(random.randint(0, 8999))


def fresh_county(province: str = "37") -> str:
    """A 6-digit county code in the province, never handed out twice in one session."""
    return f"{province}{1000 + next(_counties) % 9000:04d}"
