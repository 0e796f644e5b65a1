-- 全覆盖率 kept as steps (issue 17; services/dashboard/coverage.py): a region's answer was a count over
-- every village below it, each checked for a term covering the day: 22-26 ms for a province of 62,074
-- villages on the benchmark's stack, about 180 ms for the country, on every cache miss; the country's
-- 620,000 villages took seconds. Now it sums the region's rows up to the day.
CREATE TABLE village_coverage (
    village_code text PRIMARY KEY,
    firsts date[] NOT NULL,  -- the union of the village's terms, as disjoint spans in order: first days
    lasts date[] NOT NULL    -- and last days covered, both included
);

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
), unions AS (
    SELECT r.code AS village_code,
           range_agg(daterange(t.first, t.last, '[]')) FILTER (WHERE t.first <= t.last) AS spans
    FROM regions r LEFT JOIN terms t ON t.village_code = r.code
    WHERE r.level = 'village' AND r.retired_on IS NULL
    GROUP BY r.code
)
INSERT INTO village_coverage (village_code, firsts, lasts)
SELECT u.village_code,
       coalesce(array_agg(lower(s.span) ORDER BY lower(s.span)) FILTER (WHERE s.span IS NOT NULL), '{}'),
       coalesce(array_agg(upper(s.span) - 1 ORDER BY lower(s.span)) FILTER (WHERE s.span IS NOT NULL), '{}')
FROM unions u LEFT JOIN LATERAL unnest(u.spans) AS s (span) ON true
GROUP BY u.village_code;

WITH steps AS (
    SELECT village_code, date '-infinity' AS day, 1 AS villages, 0 AS covered FROM village_coverage
    UNION ALL
    SELECT village_code, first, 0, 1 FROM village_coverage, unnest(firsts) AS first
    UNION ALL
    SELECT village_code, last + 1, 0, -1 FROM village_coverage, unnest(lasts) AS last
    WHERE last < date '9999-12-31'
)
INSERT INTO coverage_steps (region_code, day, villages, covered)
SELECT above.region_code, s.day, sum(s.villages), sum(s.covered)
FROM steps s CROSS JOIN LATERAL (VALUES ('0'), (left(s.village_code, 2)), (left(s.village_code, 4)),
                                        (left(s.village_code, 6)), (left(s.village_code, 9)),
                                        (s.village_code)) AS above (region_code)
GROUP BY above.region_code, s.day
HAVING sum(s.villages) <> 0 OR sum(s.covered) <> 0;
