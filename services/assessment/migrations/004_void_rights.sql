-- Who recorded each activity, so that a void takes it back only when its sender may void it
-- (contracts.events.void_permitted), as the ledger and the dashboard decide.
ALTER TABLE activities ADD COLUMN recorded_by text;
