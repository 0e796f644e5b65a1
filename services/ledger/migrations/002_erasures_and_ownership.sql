-- personal.erased events: an entry's personal fields are gone (the key of a sealed value was destroyed
-- before the event; a plain value of an older record is blanked when the event is applied). Kept per
-- target, so a rebuild applies every erasure again.
CREATE TABLE erasures (
    target_event_id uuid PRIMARY KEY,
    village_code text NOT NULL,
    erased_at timestamptz NOT NULL,
    erased_by text NOT NULL,
    reason text NOT NULL,
    event_id uuid NOT NULL
);

-- The region that owns each advisor's registration: only it (or one above) may change the advisor
-- (contracts.events.registration_permitted); a refused registration changes nothing.
ALTER TABLE advisors ADD COLUMN owner_region text;

-- A void by someone who may not void its target (not its author, not an office supervising the village)
-- is kept in the file but changes nothing.
ALTER TABLE voids DROP CONSTRAINT voids_status_check;
ALTER TABLE voids ADD CONSTRAINT voids_status_check
    CHECK (status IN ('applied', 'unknown_target', 'already_voided', 'not_permitted'));
