-- Idempotency-Key, per caller: a key belongs to the caller that sent it
-- (its token's client and subject), so the same key from two callers is
-- two keys, and one caller can neither replay nor detect another's.
-- A new table beside idempotency_keys, which binaries before this one
-- still use during a rolling update; a later release drops that one.
CREATE TABLE caller_idempotency_keys (
    caller      TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    fingerprint TEXT        NOT NULL,
    status      INTEGER,
    location    TEXT,
    body        TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, key)
);

CREATE INDEX caller_idempotency_keys_created_at_idx ON caller_idempotency_keys (created_at);
