"""The SQL form of "assigned to this village on that day" answers the table of cases as the Python form
does, on the real PostgreSQL."""

from __future__ import annotations

import asyncpg

from contracts.assignment import assigned_between_sql, assigned_on_sql
from tests.support.assignment_cases import CASES


async def test_the_sql_definition_answers_the_table_of_cases(admin_pool: asyncpg.Pool) -> None:
    rows = [
        (number, term.term_start, term.term_end, term.released_on)
        for number, (_, terms, _, _) in enumerate(CASES)
        for term in terms
    ]
    async with admin_pool.acquire() as conn:
        found = await conn.fetch(
            f"""SELECT c.number,
                       EXISTS (SELECT 1 FROM unnest($1::int[], $2::date[], $3::date[], $4::date[])
                                   AS a(number, term_start, term_end, released_on)
                               WHERE a.number = c.number AND {assigned_on_sql("a", "c.day")}) AS on_day,
                       EXISTS (SELECT 1 FROM unnest($1::int[], $2::date[], $3::date[], $4::date[])
                                   AS a(number, term_start, term_end, released_on)
                               WHERE a.number = c.number
                                 AND {assigned_between_sql("a", "c.day", "c.day")}) AS between_days
                FROM unnest($5::int[], $6::date[]) AS c(number, day) ORDER BY c.number""",
            [row[0] for row in rows],
            [row[1] for row in rows],
            [row[2] for row in rows],
            [row[3] for row in rows],
            list(range(len(CASES))),
            [day for _, _, day, _ in CASES],
        )
    answers = {
        name: (row["on_day"], row["between_days"]) for (name, *_), row in zip(CASES, found, strict=True)
    }
    assert answers == {name: (assigned, assigned) for name, _, _, assigned in CASES}
