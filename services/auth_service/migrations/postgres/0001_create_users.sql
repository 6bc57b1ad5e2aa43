-- The people who sign in. A user is never deleted, only disabled: its id
-- is the `sub` of the tokens it was issued, and stays its own in the logs
-- of the services. password_hash is an argon2id PHC string; role names a
-- set of scopes (services/auth_service/src/users.rs).
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT        NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    password_hash TEXT        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          TEXT        NOT NULL CHECK (role IN ('admin', 'viewer')),
    disabled      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_name_key UNIQUE (name)
);
