-- 一村一卷: one file per village. Entries are appended, never updated or deleted; a void is an entry
-- of its own that marks its target. Personal data lives apart in entry_personal.

CREATE TABLE regions (
    code text PRIMARY KEY,
    name text NOT NULL,
    level text NOT NULL,
    parent_code text,
    retired_on date,
    successor_code text
);

CREATE TABLE advisors (
    advisor_id text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    organisation text NOT NULL,
    licence_no text NOT NULL
);

-- An advisor's phone is personal data: apart, so it can be masked or removed alone.
CREATE TABLE advisor_personal (
    advisor_id text PRIMARY KEY REFERENCES advisors,
    phone text
);

CREATE TABLE assignments (
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    term_start date NOT NULL,
    term_end date NOT NULL,
    annual_subsidy_yuan numeric(12, 2) NOT NULL,
    released_on date,
    release_reason text,
    assigned_event_id uuid NOT NULL,
    PRIMARY KEY (advisor_id, village_code, term_start)
);
CREATE INDEX assignments_by_village ON assignments (village_code, term_start);

-- The head of each village's file: the last entry number and hash.
CREATE TABLE village_files (
    village_code text PRIMARY KEY,
    last_sequence bigint NOT NULL,
    last_hash bytea NOT NULL
);

CREATE TABLE entries (
    event_id uuid PRIMARY KEY,
    village_code text NOT NULL,
    sequence bigint NOT NULL,
    event_type text NOT NULL,
    advisor_id text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz,
    recorded_by text NOT NULL,
    fields jsonb NOT NULL,
    personal_digest bytea NOT NULL,
    previous_hash bytea NOT NULL,
    entry_hash bytea NOT NULL,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    UNIQUE (village_code, sequence)
);
CREATE INDEX entries_by_advisor ON entries (advisor_id, occurred_at, event_id);
CREATE INDEX entries_by_village_time ON entries (village_code, occurred_at);

CREATE TABLE entry_personal (
    event_id uuid PRIMARY KEY REFERENCES entries,
    data jsonb,
    salt bytea,
    erased_at timestamptz,
    erased_by text
);

-- record.voided entries: what each void did to its target.
CREATE TABLE voids (
    void_event_id uuid PRIMARY KEY REFERENCES entries,
    target_event_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('applied', 'unknown_target', 'already_voided')),
    voided_at timestamptz NOT NULL,
    voided_by text NOT NULL
);
CREATE UNIQUE INDEX one_applied_void_per_target ON voids (target_event_id) WHERE status = 'applied';

-- An event id seen again with other content: kept out of the ledger, listed here (first one wins).
CREATE TABLE conflicts (
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    village_code text NOT NULL,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    first_kafka_partition integer NOT NULL,
    first_kafka_offset bigint NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
);
