-- What the assessment needs to know, learned from events only (never from the ledger's tables).

CREATE TABLE policies (
    event_id uuid PRIMARY KEY,
    region_code text NOT NULL,
    effective_from date NOT NULL,
    rules jsonb NOT NULL,
    published_by text NOT NULL
);
CREATE INDEX policies_by_region ON policies (region_code, effective_from);

CREATE TABLE region_tags (
    code text NOT NULL,
    effective_from date NOT NULL,
    tags text[] NOT NULL,
    PRIMARY KEY (code, effective_from)
);

CREATE TABLE assignments (
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    term_start date NOT NULL,
    term_end date NOT NULL,
    annual_subsidy_yuan numeric(12, 2) NOT NULL,
    released_on date,
    PRIMARY KEY (advisor_id, village_code, term_start)
);
CREATE INDEX assignments_by_village ON assignments (village_code);

CREATE TABLE violations (
    event_id uuid PRIMARY KEY,
    advisor_id text NOT NULL,
    village_code text,
    violation_date date NOT NULL
);

-- One row per service record, with what the rules count; a void marks its record, which then stops counting.
CREATE TABLE activities (
    event_id uuid PRIMARY KEY,
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz,
    on_site_start timestamptz,
    on_site_end timestamptz,
    offsite_minutes integer NOT NULL DEFAULT 0,
    evening_or_holiday boolean NOT NULL DEFAULT false,
    large_event boolean NOT NULL DEFAULT false,
    feedback_score integer,
    voided_at timestamptz
);
CREATE INDEX activities_by_pair ON activities (advisor_id, village_code, occurred_at);
CREATE INDEX activities_by_village ON activities (village_code, occurred_at);
