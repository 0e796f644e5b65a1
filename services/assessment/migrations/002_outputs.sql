-- What the assessment itself published, learned back from the `assessment` topic: a replay from offset 0
-- knows every close and alert already sent, so it sends nothing twice.

CREATE TABLE month_closes (
    event_id uuid PRIMARY KEY,
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    month text NOT NULL,
    revision integer NOT NULL,
    on_site_minutes integer NOT NULL,
    credited_offsite_minutes integer NOT NULL,
    required_minutes integer NOT NULL,
    met boolean NOT NULL,
    UNIQUE (advisor_id, village_code, month, revision)
);

CREATE TABLE alerts (
    event_id uuid PRIMARY KEY,
    advisor_id text NOT NULL,
    village_code text NOT NULL,
    kind text NOT NULL,
    as_of date NOT NULL,
    detail text NOT NULL
);
CREATE INDEX alerts_by_village ON alerts (village_code, as_of);
