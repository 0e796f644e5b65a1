-- Who recorded each counted record and in which village, so that a void takes a record back only when
-- its sender may void it (contracts.events.void_permitted), as the ledger and the assessment decide.
ALTER TABLE counted_records ADD COLUMN recorded_village text;
ALTER TABLE counted_records ADD COLUMN recorded_by text;

-- The region that owns each advisor's registration: only it (or one above) may change the public card
-- (contracts.events.registration_permitted). `phone` now holds only the contact the advisor chose to
-- publish (public_contact), never the registry's personal phone.
ALTER TABLE advisors ADD COLUMN owner_region text;
ALTER TABLE advisors ADD COLUMN contact_consented_on date;
UPDATE advisors SET phone = NULL;
