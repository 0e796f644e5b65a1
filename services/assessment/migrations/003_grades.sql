-- Year-end grades as published (every revision), learned back from the `assessment` topic.
CREATE TABLE grades (
    event_id uuid PRIMARY KEY,
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    year integer NOT NULL,
    revision integer NOT NULL,
    score double precision NOT NULL,
    grade text NOT NULL,
    subsidy_ratio double precision NOT NULL,
    subsidy_yuan numeric(12, 2) NOT NULL,
    components jsonb NOT NULL,
    policy_event_id uuid NOT NULL,
    policy_region_code text NOT NULL,
    changes text,
    UNIQUE (advisor_id, village_code, year, revision)
);
