-- Advisor teams (律师团队, issue 18) for the village and regional views: each registration in the registry's
-- order (its members from which day: contracts.assignment.members_on) and the teams' terms in villages.

CREATE TABLE team_registrations (
    event_id uuid PRIMARY KEY,
    team_id text NOT NULL,
    position bigserial NOT NULL,
    name text NOT NULL,
    organisation text NOT NULL,
    leader_id text,
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
CREATE INDEX team_assignments_by_village ON team_assignments (village_code, term_start);
