-- Active advisors above the village by presence (issue 17): a region's row in `advisor_activity_total` no
-- longer sums the advisor's records in every village below it; it counts the regions one level down where
-- the advisor is active (records > 0). It is > 0 exactly when the old sum was, so `active_advisors` in
-- `figures` does not change; but it changes only when a region below turns active or inactive, so most
-- batches write nothing above the village (bench/results/2026-12-07-dashboard-statements.txt). The village
-- rows are kept; every row above is computed again from them, a level at a time.
DELETE FROM advisor_activity_total WHERE length(region_code) <> 12;

INSERT INTO advisor_activity_total (region_code, period, advisor_id, records)
SELECT left(region_code, 9), period, advisor_id, count(*) FROM advisor_activity_total
WHERE length(region_code) = 12 AND records > 0 GROUP BY 1, 2, 3;

INSERT INTO advisor_activity_total (region_code, period, advisor_id, records)
SELECT left(region_code, 6), period, advisor_id, count(*) FROM advisor_activity_total
WHERE length(region_code) = 9 GROUP BY 1, 2, 3;

INSERT INTO advisor_activity_total (region_code, period, advisor_id, records)
SELECT left(region_code, 4), period, advisor_id, count(*) FROM advisor_activity_total
WHERE length(region_code) = 6 GROUP BY 1, 2, 3;

INSERT INTO advisor_activity_total (region_code, period, advisor_id, records)
SELECT left(region_code, 2), period, advisor_id, count(*) FROM advisor_activity_total
WHERE length(region_code) = 4 GROUP BY 1, 2, 3;

INSERT INTO advisor_activity_total (region_code, period, advisor_id, records)
SELECT '0', period, advisor_id, count(*) FROM advisor_activity_total
WHERE length(region_code) = 2 GROUP BY 1, 2, 3;
