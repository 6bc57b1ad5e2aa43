-- Idempotency-Key: the response to the first request with each key, so
-- that a retry gets it again instead of creating a second record. A row
-- without a status is a request still running (or one that died).
CREATE TABLE idempotency_keys (
    key         TEXT        PRIMARY KEY,
    fingerprint TEXT        NOT NULL,
    status      INTEGER,
    location    TEXT,
    body        TEXT,
    created_at  TEXT        NOT NULL
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
