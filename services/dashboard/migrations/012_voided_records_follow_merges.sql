-- A merged village's voided records move with its counted ones to the end of its chain of merges (issue 17):
-- a merge used to leave them behind, so whether a void coming after it found its record depended on how
-- the events were cut into batches. This puts them where a rebuild does; they carry no figures.
--
-- A village merged into one merged already had its counted records moved to that (retired) village, not
-- to the end of the chain, with their figures; this migration leaves those (and the figures) alone. The
-- counted records still under a merged village, which a rebuild (python -m services.dashboard rebuild)
-- moves to where they count, are found by:
--   SELECT c.village_code, r.successor_code, count(*)
--   FROM counted_records c JOIN regions r ON r.code = c.village_code
--   WHERE r.level = 'village' AND r.successor_code IS NOT NULL AND NOT c.voided
--   GROUP BY 1, 2;
WITH RECURSIVE chain (start_code, code, steps, path) AS (
    SELECT code, successor_code, 1, ARRAY[code, successor_code]
    FROM regions WHERE level = 'village' AND successor_code IS NOT NULL
  UNION ALL
    -- on to the successor's successor; a loop of merges ends before it comes back (rules.merge_chain)
    SELECT c.start_code, r.successor_code, c.steps + 1, c.path || r.successor_code
    FROM chain c JOIN regions r ON r.code = c.code
    WHERE r.level = 'village' AND r.successor_code IS NOT NULL AND r.successor_code <> ALL (c.path)
),
chain_end AS (
    SELECT DISTINCT ON (start_code) start_code, code FROM chain ORDER BY start_code, steps DESC
)
UPDATE counted_records c SET village_code = e.code
FROM chain_end e
WHERE c.village_code = e.start_code AND c.voided;
