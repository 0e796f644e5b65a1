"""`plumbing.postgres.code_within_sql`: the range it adds selects the same codes as the prefix LIKE it keeps,
for codes of ASCII digits (contracts' RegionCode and VillageCode), compared as C.UTF-8 compares them: by code
point, as Python compares strings."""

from __future__ import annotations

import itertools
import random

from plumbing.postgres import code_within_sql


def in_range(code: str, prefix: str) -> bool:
    return prefix <= code < prefix + ":"


def test_the_range_holds_exactly_the_codes_that_start_with_the_prefix() -> None:
    short = ["".join(digits) for size in range(5) for digits in itertools.product("0129", repeat=size)]
    draw = random.Random(17)
    long = [
        "".join(draw.choice("0123456789") for _ in range(size))
        for size in (2, 4, 6, 9, 12)
        for _ in range(300)
    ]
    codes = short + long
    prefixes = short[:200] + [code[:digits] for code in long[:300] for digits in (0, 2, 4, 6, 9)]
    for prefix in prefixes:
        for code in codes:
            assert in_range(code, prefix) == code.startswith(prefix), (prefix, code)


def test_the_condition_keeps_the_like_beside_the_range() -> None:
    condition = code_within_sql("r.code", "$1")
    assert condition == "(r.code >= $1 AND r.code < ($1 || ':') AND r.code LIKE ($1 || '%'))"
