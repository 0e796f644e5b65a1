-- Which region owns each advisor's registration, as intake accepted them: a registration from another
-- region is refused at the door (403), before anything is published. The consumers apply the same rule
-- (contracts.events.registration_permitted) to what is on the topic.
CREATE TABLE advisor_owners (
    advisor_id text PRIMARY KEY,
    region_code text NOT NULL,
    event_id uuid NOT NULL
);
