-- Advisor teams (律师团队, issue 18): each registration in the registry's order (who the members are from
-- which day), the teams' terms in villages, and which service records were served as a team.

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
    annual_subsidy_yuan numeric(12, 2) NOT NULL,
    released_on date,
    PRIMARY KEY (team_id, village_code, term_start)
);
CREATE INDEX team_assignments_by_village ON team_assignments (village_code);

-- A record served as a team: its row in `activities` says what it counts for (and whether it was voided).
CREATE TABLE team_activities (
    event_id uuid PRIMARY KEY,
    team_id text NOT NULL,
    village_code text NOT NULL
);
CREATE INDEX team_activities_by_team ON team_activities (team_id, village_code);
