CREATE TABLE clients (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    card_number    TEXT        NOT NULL CHECK (card_number ~ '^[A-Za-z0-9-]{1,32}$'),
    card_issued_on DATE        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT clients_card_number_key UNIQUE (card_number)
);
