-- The clients that client_service has deleted (or is deleting): no order
-- may be created for them, or moved to them, from then on. A client's id is
-- never given out again, so a row here never blocks another client.
CREATE TABLE deleted_clients (
    client_id  BIGINT      PRIMARY KEY,
    deleted_at TIMESTAMPTZ NOT NULL
);
