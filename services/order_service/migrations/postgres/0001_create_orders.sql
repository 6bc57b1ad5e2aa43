-- client_id names a client in client_service's own database: there is no
-- foreign key across services; order_service checks it over HTTP instead.
CREATE TABLE orders (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id   BIGINT      NOT NULL CHECK (client_id > 0),
    item        TEXT        NOT NULL CHECK (char_length(item) BETWEEN 1 AND 200),
    quantity    INTEGER     NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    price_cents BIGINT      NOT NULL CHECK (price_cents >= 0),
    status      TEXT        NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'delivered', 'cancelled')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX orders_client_id_idx ON orders (client_id, id);
