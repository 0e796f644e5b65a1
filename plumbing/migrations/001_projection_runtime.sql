-- The projection runtime's tracking tables, created in every projection's own schema.

-- The next Kafka offset to apply, per consumer group, topic and partition. Written in the same
-- transaction as the view update, so processing resumes exactly where it stopped.
CREATE TABLE projection_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Every event id applied once, with a fingerprint of its content: a retry with the same content is
-- a duplicate, the same id with other content is a conflict (first one wins).
CREATE TABLE processed_events (
    event_id uuid PRIMARY KEY,
    fingerprint bytea NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    applied_at timestamptz NOT NULL
);
