-- What each month close and grade (the latest revision) adds, so that a newer revision replaces it.
CREATE TABLE assessment_figures (
    output_key text PRIMARY KEY,
    revision integer NOT NULL,
    village_code text NOT NULL,
    periods text[] NOT NULL,
    figures jsonb NOT NULL,
    slot integer NOT NULL
);
