-- Active advisors (advisors who recorded at least one service in a region and period) and the advisors'
-- public card for the village notice page (公示: name, organisation, the contact the programme publishes).
-- `advisor_activity` is keyed by partition like `figures`, so consumers of different partitions never
-- write the same row; "active" is a count of distinct advisors with records > 0 over the partitions.

ALTER TABLE counted_records ADD COLUMN advisor_id text;
ALTER TABLE counted_records ADD COLUMN active boolean NOT NULL DEFAULT false;

CREATE TABLE advisor_activity (
    region_code text NOT NULL,
    period text NOT NULL,
    kafka_partition integer NOT NULL,
    advisor_id text NOT NULL,
    records integer NOT NULL,
    PRIMARY KEY (region_code, period, kafka_partition, advisor_id)
);
CREATE INDEX advisor_activity_counted ON advisor_activity (region_code, period, advisor_id) WHERE records > 0;

CREATE TABLE advisors (
    advisor_id text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    organisation text NOT NULL,
    phone text
);
