"""全覆盖率 kept as steps (issue 17): a region's villages and, for any day, how many of them have an advisor
or a team assigned, read from a handful of rows instead of every village of the region.

A village counts when it is registered as a village and not retired (`regions.retired_on IS NULL`, whatever
the day: a retired village leaves the count at once). It is covered on the days of the union of its terms,
advisors' and teams' alike (`contracts.assignment`: from `term_start` to the last day served), kept as a
`datemultirange` in `village_coverage` (disjoint spans; spans that touch are one). Each span adds +1 to the
covered count on its first day and -1 on the day after its last. A region's row of a day in
`coverage_steps` holds the sum of those steps over the villages below it, and its village count is kept
on -infinity; the count on a day is the sum of the region's rows up to it (`queries.COVERAGE`). A village's
own answer is its row of `village_coverage` (steps of their own would be most of the rows written).

When a batch touches a village (its registration or retirement, a term or a release of an advisor or a
team), `WRITE` computes its spans again from the tables, in the batch's transaction, and writes only the
difference to what it had: the village's row, and the steps of every region above it (summed by
township first), in key order. The rows do not depend on how the events were batched: a row back at 0 is
removed (`EMPTIED`).

Set-based, a statement per batch, each touched village looked up through the indexes (`PLANNER`): on the
benchmark's registry (`python -m bench.registry_apply`, batches of 10,000) the dashboard's apply step takes
1.5-2.1 s instead of 0.9 s without coverage for 20,000 villages, 11.5-12.4 s instead of 5.0-5.7 s for
110,000 (bench/results/2026-12-07-coverage-registry-apply.txt). A first version that computed the spans
and steps in Python took 2.8-3.5 s for 20,000, one with steps of every village too 3.9-4.0 s."""

from __future__ import annotations

from contracts.assignment import last_day_served_sql
from contracts.events import COUNTRY_CODE
from services.dashboard.rules import LEVEL_PREFIXES

# the country, then each level's prefix of a township's code (the township's own last)
_ABOVE = ", ".join(
    [f"('{COUNTRY_CODE}')", *(f"(left(t.code, {digits}))" for digits in LEVEL_PREFIXES if digits <= 9)]
)

# How `WRITE` is planned (set for it alone): each touched village's rows are looked up through the indexes
# whatever the planner believes of the tables. In a rebuild they are new and unanalysed (`regions` "1 row"),
# and a sequential scan per village, or a join filter of every touched code against every region, took
# 18-65 s a batch of 10,000 villages of 110,000 where the lookups take milliseconds.
PLANNER = ("enable_seqscan", "off")

# $1: the touched villages' codes. Returns the regions with a row back at 0.
WRITE = f"""WITH touched AS MATERIALIZED (
    SELECT DISTINCT code FROM unnest($1::text[]) AS code ORDER BY code
), held AS (
    SELECT x.code AS village_code, v.spans
    FROM touched x CROSS JOIN LATERAL (
        SELECT spans FROM village_coverage v WHERE v.village_code = x.code FOR UPDATE) AS v
), fresh AS (
    SELECT x.code AS village_code, s.spans
    FROM touched x
    CROSS JOIN LATERAL (  -- LIMIT: looked up per village, never joined to every region
        SELECT 1 FROM regions r WHERE r.code = x.code AND r.level = 'village' AND r.retired_on IS NULL
        LIMIT 1) AS r
    CROSS JOIN LATERAL (
        SELECT coalesce(range_agg(daterange(t.first, t.last, '[]')) FILTER (WHERE t.first <= t.last),
                        '{{}}'::datemultirange) AS spans
        FROM (SELECT a.term_start AS first, {last_day_served_sql("a")} AS last
              FROM assignments a WHERE a.village_code = x.code
              UNION ALL
              SELECT t.term_start, {last_day_served_sql("t")}
              FROM team_assignments t WHERE t.village_code = x.code) AS t) AS s
), changed AS (
    SELECT village_code, h.spans AS was, f.spans AS now
    FROM fresh f FULL JOIN held h USING (village_code)
    WHERE h.spans IS DISTINCT FROM f.spans
), kept AS (
    INSERT INTO village_coverage (village_code, spans)
    SELECT village_code, now FROM changed WHERE now IS NOT NULL ORDER BY village_code
    ON CONFLICT (village_code) DO UPDATE SET spans = EXCLUDED.spans
), gone AS (
    DELETE FROM village_coverage v USING changed c WHERE v.village_code = c.village_code AND c.now IS NULL
), signed AS (
    SELECT c.village_code, s.sign, s.spans
    FROM changed c CROSS JOIN LATERAL (VALUES (-1, c.was), (1, c.now)) AS s (sign, spans)
    WHERE s.spans IS NOT NULL
), days AS (
    SELECT village_code, date '-infinity' AS day, sign AS villages, 0 AS covered FROM signed
    UNION ALL
    SELECT village_code, lower(span), 0, sign FROM signed, unnest(spans) AS span
    UNION ALL
    SELECT village_code, upper(span), 0, -sign FROM signed, unnest(spans) AS span WHERE NOT upper_inf(span)
), townships AS (
    SELECT left(village_code, 9) AS code, day, sum(villages) AS villages, sum(covered) AS covered
    FROM days GROUP BY 1, 2
)
INSERT INTO coverage_steps AS s (region_code, day, villages, covered)
SELECT above.region_code, t.day, sum(t.villages), sum(t.covered)
FROM townships t CROSS JOIN LATERAL (VALUES {_ABOVE}) AS above (region_code)
GROUP BY above.region_code, t.day
HAVING sum(t.villages) <> 0 OR sum(t.covered) <> 0
ORDER BY above.region_code, t.day
ON CONFLICT (region_code, day) DO UPDATE
SET villages = s.villages + EXCLUDED.villages, covered = s.covered + EXCLUDED.covered
RETURNING CASE WHEN s.villages = 0 AND s.covered = 0 THEN s.region_code END AS emptied"""  # noqa: S608 - the conditions are code

# $1: regions with a row back at 0: removed, as if never written (the same rows whatever the batching).
EMPTIED = "DELETE FROM coverage_steps WHERE region_code = ANY($1::text[]) AND villages = 0 AND covered = 0"
