-- The country (region code '0', the Ministry's view) above the provinces: every figure is carried to it
-- as to any region above a village (issue 17). Existing data is carried over from the provinces' rows;
-- active advisors are counted again (an advisor serving two provinces is one active advisor nationally).
INSERT INTO figures (region_code, period, kafka_partition, metric, value)
SELECT '0', period, kafka_partition, metric, sum(value) FROM figures
WHERE length(region_code) = 2 AND metric <> 'active_advisors'
GROUP BY period, kafka_partition, metric HAVING sum(value) <> 0;

INSERT INTO advisor_activity_total (region_code, period, advisor_id, records)
SELECT '0', period, advisor_id, sum(records) FROM advisor_activity_total
WHERE length(region_code) = 2
GROUP BY period, advisor_id HAVING sum(records) <> 0;

INSERT INTO figures (region_code, period, kafka_partition, metric, value)
SELECT '0', period, 200, 'active_advisors', count(*) FROM advisor_activity_total
WHERE region_code = '0' AND records > 0 GROUP BY period;
