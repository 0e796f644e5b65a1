-- The key store of personal data (crypto-shredding): one data key per record (or per advisor) that has
-- personal fields, wrapped with the master key. Intake creates keys; the ledger reads them to show what an
-- authorised caller may see; an erasure deletes the key, and with it every sealed copy's meaning.

CREATE TABLE data_keys (
    key_id uuid PRIMARY KEY,
    subject text NOT NULL,
    village_code text,
    wrapped_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX data_keys_by_subject ON data_keys (subject);

-- Erasures are kept (without any personal value): a retry of an erased record is refused, and the
-- erasure event can be published again with the same content.
CREATE TABLE erasures (
    key_id uuid PRIMARY KEY,
    subject text NOT NULL,
    village_code text,
    erased_at timestamptz NOT NULL,
    erased_by text NOT NULL,
    reason text NOT NULL
);
