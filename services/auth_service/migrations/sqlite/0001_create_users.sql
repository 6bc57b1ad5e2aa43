-- The people who sign in. A user is never deleted, only disabled: its id
-- is the `sub` of the tokens it was issued, and stays its own in the logs
-- of the services. password_hash is an argon2id PHC string; role names a
-- set of scopes (services/auth_service/src/users.rs). AUTOINCREMENT: an id
-- is never given out twice.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Za-z0-9._-]*'),
    password_hash TEXT    NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    CONSTRAINT users_name_key UNIQUE (name)
);
