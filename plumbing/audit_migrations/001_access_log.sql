-- Who read personal data or exported a ledger, when, what and why (PIPL Art. 51-55; the seeds' 台账 are
-- kept by the county). Append-only: rows are inserted, never changed or removed; it lives outside the
-- projections' schemas, so no rebuild touches it.
CREATE TABLE access_log (
    access_id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    service text NOT NULL,
    action text NOT NULL CHECK (action IN ('read_personal', 'export')),
    subject text NOT NULL,
    role text NOT NULL,
    caller_region text NOT NULL,
    region_code text NOT NULL,
    resource text NOT NULL,
    records integer NOT NULL,
    purpose text NOT NULL,
    request_id text
);
CREATE INDEX access_log_by_region ON access_log (region_code text_pattern_ops, at);

CREATE FUNCTION access_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access log is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
