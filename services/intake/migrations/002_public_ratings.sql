-- Residents' ratings from the public notice that Kafka has stored, by their derived id (device, advisor,
-- day): a second rating the same day is answered 409 by every replica, also after a restart. Only the id
-- and the day: nothing about the resident. Rows older than a few days are deleted as new ones come.
CREATE TABLE public_ratings (
    event_id uuid PRIMARY KEY,
    day date NOT NULL
);
CREATE INDEX public_ratings_day ON public_ratings (day);
