-- Active advisors above the village by presence (issue 17): a region's row in `advisor_activity_total` no
-- longer sums the advisor's records in every village below it; it counts the regions one level down where
-- the advisor is active (records > 0). It changes only when a region below turns active or inactive, so most
-- batches write nothing above the village (bench/results/2026-12-07-activity-presence.txt). The village
-- rows are kept, but for those back at 0 (removed, as the projection now removes them); every row above is
-- computed again from them, a level at a time. `active_advisors` above the village is counted again from
-- the new rows: it was > 0 where the records summed to more than 0, which differs where a village is below
-- 0 (a void whose record was counted in another village) beside one above.
DELETE FROM advisor_activity_total WHERE length(region_code) <> 12 OR records = 0;

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

UPDATE figures SET active_advisors = 0
WHERE kafka_partition = 200 AND length(region_code) < 12 AND active_advisors <> 0;

INSERT INTO figures (region_code, period, kafka_partition, active_advisors)
SELECT region_code, period, 200, count(*) FROM advisor_activity_total
WHERE length(region_code) < 12 AND records > 0 GROUP BY 1, 2
ON CONFLICT (region_code, period, kafka_partition) DO UPDATE SET active_advisors = EXCLUDED.active_advisors;

-- A row whose every metric is 0 is removed, as the projection removes it.
DELETE FROM figures f
WHERE kafka_partition = 200 AND length(region_code) < 12 AND NOT EXISTS (
    SELECT 1 FROM jsonb_each(to_jsonb(f) - 'region_code' - 'period' - 'kafka_partition') AS m
    WHERE m.value <> '0'::jsonb);
