-- AUTOINCREMENT: an id is never given out twice, even after a delete.
CREATE TABLE clients (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    card_number    TEXT NOT NULL CHECK (length(card_number) BETWEEN 1 AND 32),
    card_issued_on TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CONSTRAINT clients_card_number_key UNIQUE (card_number)
);
