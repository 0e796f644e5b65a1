-- Which region owns each team's registration (律师团队), as intake accepted them: like an advisor's, a
-- registration of the team from another region (not the owner nor above it) is refused at the door (403).
CREATE TABLE team_owners (
    team_id text PRIMARY KEY,
    region_code text NOT NULL,
    event_id uuid NOT NULL
);
