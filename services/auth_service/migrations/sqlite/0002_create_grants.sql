-- What the authorization code grant (RFC 6749 §4.1, PKCE: RFC 7636) and
-- the refresh tokens need, following RFC 9700. Every secret (a sign-in
-- session's id, a code, a refresh token) is a random value given out once
-- and stored only as its SHA-256, in lower-case hex: a copy of the database
-- lets nobody sign in or redeem anything. Rows past their expiry are
-- refused by the statements that read them; auth_service deletes them
-- every few minutes (grants.rs: GrantStore::purge). Times are
-- kit_data's Timestamp text (UTC, RFC 3339), which sorts as it compares.

-- A person signed in at auth_service (its cookie holds the id): a second
-- authorization while it lives asks for no password.
CREATE TABLE sign_in_sessions (
    id_hash    TEXT        PRIMARY KEY CHECK (length(id_hash) = 64 AND id_hash NOT GLOB '*[^0-9a-f]*'),
    user_id    INTEGER     NOT NULL REFERENCES users (id),
    created_at TEXT        NOT NULL,
    expires_at TEXT        NOT NULL CHECK (expires_at > created_at)
);

CREATE INDEX sign_in_sessions_user_id_idx ON sign_in_sessions (user_id);

-- An authorization code: single-use (used_at), short-lived (60 s at
-- most), bound to its client, its redirect URI and its PKCE challenge (S256
-- only: the challenge is BASE64URL(SHA-256(verifier)), 43 characters).
-- Redeeming it starts the refresh-token family family_id; a second
-- redemption revokes that family (RFC 6749 §4.1.2). session_hash: the
-- sign-in session it was issued in, so that signing out revokes what came
-- of it (no foreign key: a session may be deleted before its codes).
CREATE TABLE authorization_codes (
    code_hash      TEXT        PRIMARY KEY CHECK (length(code_hash) = 64 AND code_hash NOT GLOB '*[^0-9a-f]*'),
    client_id      TEXT        NOT NULL,
    user_id        INTEGER     NOT NULL REFERENCES users (id),
    session_hash   TEXT,
    redirect_uri   TEXT        NOT NULL,
    scope          TEXT        NOT NULL,
    code_challenge TEXT        NOT NULL CHECK (length(code_challenge) = 43 AND code_challenge NOT GLOB '*[^A-Za-z0-9_-]*'),
    family_id      TEXT        NOT NULL,
    issued_at      TEXT        NOT NULL,
    expires_at     TEXT        NOT NULL CHECK (expires_at > issued_at),
    used_at        TEXT
);

CREATE INDEX authorization_codes_session_hash_idx ON authorization_codes (session_hash);
CREATE INDEX authorization_codes_user_id_idx ON authorization_codes (user_id);

-- A refresh token: opaque, rotated on every use (used_at set, a child with
-- parent_hash = this one issued). Every token issued from one code is one
-- family: the reuse of a used token revokes the whole family (RFC 9700
-- §4.14.2). expires_at is the idle lifetime (each rotation moves it, never
-- past family_expires_at, the family's absolute lifetime).
CREATE TABLE refresh_tokens (
    token_hash        TEXT        PRIMARY KEY CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
    family_id         TEXT        NOT NULL,
    parent_hash       TEXT        REFERENCES refresh_tokens (token_hash),
    user_id           INTEGER     NOT NULL REFERENCES users (id),
    client_id         TEXT        NOT NULL,
    scope             TEXT        NOT NULL,
    session_hash      TEXT,
    issued_at         TEXT        NOT NULL,
    expires_at        TEXT        NOT NULL CHECK (expires_at > issued_at),
    family_expires_at TEXT        NOT NULL CHECK (family_expires_at >= expires_at),
    used_at           TEXT,
    revoked_at        TEXT
);

CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session_hash_idx ON refresh_tokens (session_hash);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
