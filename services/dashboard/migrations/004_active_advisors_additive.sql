-- Active advisors as an additive figure: `advisor_activity_total` keeps (region, period, advisor) →
-- records, and each batch adds +1 / -1 to the figure `active_advisors` where an advisor's records in a
-- region and period go from none to some or back. A province-level answer is then a sum of a few rows
-- instead of a distinct count over every advisor (bench/README.md). Existing data is carried over.

CREATE TABLE advisor_activity_total (
    region_code text NOT NULL,
    period text NOT NULL,
    advisor_id text NOT NULL,
    records integer NOT NULL,
    PRIMARY KEY (region_code, period, advisor_id)
);

INSERT INTO advisor_activity_total (region_code, period, advisor_id, records)
SELECT region_code, period, advisor_id, sum(records) FROM advisor_activity
GROUP BY region_code, period, advisor_id HAVING sum(records) <> 0;

INSERT INTO figures (region_code, period, kafka_partition, metric, value)
SELECT region_code, period, 200, 'active_advisors', count(*) FROM advisor_activity_total
WHERE records > 0 GROUP BY region_code, period
ON CONFLICT (region_code, period, kafka_partition, metric) DO UPDATE SET value = EXCLUDED.value;

DROP TABLE advisor_activity;
