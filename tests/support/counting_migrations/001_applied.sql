-- A projection for testing the runtime: one row per event id, counting how often it was applied.
CREATE TABLE applied (
    event_id uuid PRIMARY KEY,
    event_type text NOT NULL,
    advisor_id text NOT NULL CHECK (advisor_id NOT LIKE '%-refuse'),
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    applications integer NOT NULL DEFAULT 1
);

CREATE TABLE conflicts (
    event_id uuid NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    first_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
