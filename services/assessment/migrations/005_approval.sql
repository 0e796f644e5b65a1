-- Year-end approval (issue 13): the county adjusts and submits, the prefecture accepts or returns; the
-- accepted grades are locked and payable. Every step is an event on the assessment topic keyed by the
-- county; `approvals` is where each county's year stands, `approval_steps` every step (a step that did not
-- fit where the approval stood is kept with applied = false).
CREATE TABLE grade_adjustments (
    event_id uuid PRIMARY KEY,
    county_code text NOT NULL,
    year integer NOT NULL,
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    based_on_revision integer NOT NULL,
    grade text NOT NULL,
    subsidy_ratio double precision NOT NULL,
    subsidy_yuan numeric(12, 2) NOT NULL,
    reason text NOT NULL,
    acted_by text NOT NULL,
    acted_at timestamptz NOT NULL,
    applied boolean NOT NULL
);
CREATE INDEX grade_adjustments_by_county ON grade_adjustments (county_code, year);

CREATE TABLE approval_steps (
    event_id uuid PRIMARY KEY,
    county_code text NOT NULL,
    year integer NOT NULL,
    step text NOT NULL,
    submission integer NOT NULL,
    acted_by text NOT NULL,
    acted_at timestamptz NOT NULL,
    reason text,
    total_yuan numeric(14, 2),
    applied boolean NOT NULL
);
CREATE INDEX approval_steps_by_county ON approval_steps (county_code, year, acted_at);

CREATE TABLE approvals (
    county_code text NOT NULL,
    year integer NOT NULL,
    status text NOT NULL,
    submission integer NOT NULL,
    locked_submission integer,
    locked jsonb NOT NULL,
    pending jsonb NOT NULL,
    acted_by text,
    acted_at timestamptz,
    reason text,
    accepted_by text,
    accepted_at timestamptz,
    PRIMARY KEY (county_code, year)
);

-- What the payout sheet names: the advisor's name and organisation, and the places' names.
CREATE TABLE advisors (
    advisor_id text PRIMARY KEY,
    name text NOT NULL,
    organisation text NOT NULL
);
CREATE TABLE places (
    code text PRIMARY KEY,
    name text NOT NULL
);
