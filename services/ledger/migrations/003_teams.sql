-- Advisor teams (律师团队, issue 18): a member serves the village with the team, so the ledger's terms
-- (who served which village on which day: the 非聘期内 remark, who may read a village's file) include the
-- days of a team's term on which the advisor was its member (contracts.assignment.member_terms).

CREATE TABLE team_registrations (
    event_id uuid PRIMARY KEY,
    team_id text NOT NULL,
    position bigserial NOT NULL,
    effective_from date,
    members text[] NOT NULL
);
CREATE INDEX team_registrations_by_team ON team_registrations (team_id, position);

CREATE TABLE team_assignments (
    team_id text NOT NULL,
    village_code text NOT NULL,
    term_start date NOT NULL,
    term_end date NOT NULL,
    released_on date,
    PRIMARY KEY (team_id, village_code, term_start)
);
CREATE INDEX team_assignments_by_village ON team_assignments (village_code);
