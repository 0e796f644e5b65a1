-- A village's entries as the page's 本村台账 section shows them: kind, time, advisor and whether voided — no
-- resident's field and no free text (issue 16: the dashboard answers from its own projection instead of
-- asking the ledger's API). Existing deployments fill it with a rebuild (python -m services.dashboard rebuild).
CREATE TABLE village_log (
    event_id uuid PRIMARY KEY,
    village_code text NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_type text NOT NULL,
    advisor_id text NOT NULL,
    recorded_by text,
    voided boolean NOT NULL DEFAULT false
);
CREATE INDEX village_log_recent ON village_log (village_code, occurred_at DESC);
