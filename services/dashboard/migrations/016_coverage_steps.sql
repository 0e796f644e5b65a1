-- 全覆盖率 kept as steps (issue 17; services/dashboard/coverage.py): a region's answer was a count over
-- every village below it, each checked for a term covering the day: 102 ms for a province and 2.5 s for the
-- country of 620,573 villages (p50, bench/results/2026-12-07-coverage-steps.json), on every cache miss. Now
-- it sums the region's own rows up to the day.
CREATE TABLE village_coverage (
    village_code text PRIMARY KEY,
    spans datemultirange NOT NULL  -- the union of the village's terms: the days it is covered
);

-- The regions above the villages (a village's own answer is its row of village_coverage).
CREATE TABLE coverage_steps (
    region_code text NOT NULL,
    day date NOT NULL,
    villages integer NOT NULL,  -- on -infinity only: the region's counted villages
    covered integer NOT NULL,   -- villages covered from this day on, less those no longer covered
    PRIMARY KEY (region_code, day) INCLUDE (villages, covered)
);

-- From the tables as they are: every registered village not retired, with the union of its terms.
WITH terms AS (
    SELECT village_code, term_start AS first, least(term_end, coalesce(released_on, term_end)) AS last
    FROM assignments
    UNION ALL
    SELECT village_code, term_start, least(term_end, coalesce(released_on, term_end)) FROM team_assignments
)
INSERT INTO village_coverage (village_code, spans)
SELECT r.code,
       coalesce(range_agg(daterange(t.first, t.last, '[]')) FILTER (WHERE t.first <= t.last),
                '{}'::datemultirange)
FROM regions r LEFT JOIN terms t ON t.village_code = r.code
WHERE r.level = 'village' AND r.retired_on IS NULL
GROUP BY r.code;

WITH days AS (
    SELECT village_code, date '-infinity' AS day, 1 AS villages, 0 AS covered FROM village_coverage
    UNION ALL
    SELECT village_code, lower(span), 0, 1 FROM village_coverage, unnest(spans) AS span
    UNION ALL
    SELECT village_code, upper(span), 0, -1 FROM village_coverage, unnest(spans) AS span
    WHERE NOT upper_inf(span)
)
INSERT INTO coverage_steps (region_code, day, villages, covered)
SELECT above.region_code, d.day, sum(d.villages), sum(d.covered)
FROM days d CROSS JOIN LATERAL (VALUES ('0'), (left(d.village_code, 2)), (left(d.village_code, 4)),
                                        (left(d.village_code, 6)), (left(d.village_code, 9))) AS above (region_code)
GROUP BY above.region_code, d.day
HAVING sum(d.villages) <> 0 OR sum(d.covered) <> 0;
