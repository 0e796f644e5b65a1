-- Five-level statistics, kept incrementally. `figures` holds additive rows per partition of the
-- village-services topic, so consumers of different partitions never write the same row; a question
-- sums a handful of rows, whatever the number of events behind them.

CREATE TABLE regions (
    code text PRIMARY KEY,
    name text NOT NULL,
    level text NOT NULL,
    parent_code text,
    retired_on date,
    successor_code text
);
CREATE INDEX regions_by_parent ON regions (parent_code, code);

CREATE TABLE assignments (
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    term_start date NOT NULL,
    term_end date NOT NULL,
    released_on date,
    PRIMARY KEY (advisor_id, village_code, term_start)
);

-- What each counted record added, so that a void or a merge can take exactly that back.
CREATE TABLE counted_records (
    event_id uuid PRIMARY KEY,
    village_code text NOT NULL,
    occurred_at timestamptz NOT NULL,
    figures jsonb NOT NULL,
    kafka_partition integer NOT NULL,
    voided boolean NOT NULL DEFAULT false
);
CREATE INDEX counted_records_by_village ON counted_records (village_code);

CREATE TABLE figures (
    region_code text NOT NULL,
    period text NOT NULL,
    kafka_partition integer NOT NULL,
    metric text NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (region_code, period, kafka_partition, metric)
);
