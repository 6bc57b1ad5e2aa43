-- version: bumped by every update; the ETag of a client is its version.
-- name_folded: the name in lower case (Unicode-aware, computed by the
-- service), for case-insensitive prefix search with ?name=.
ALTER TABLE clients ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
UPDATE clients SET name_folded = lower(name);
CREATE INDEX clients_name_folded_idx ON clients (name_folded text_pattern_ops);
