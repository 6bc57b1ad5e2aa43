-- version: bumped by every update; the ETag of a client is its version.
-- name_folded: the name in lower case (Unicode-aware, computed by the
-- service: SQLite's own lower() folds only ASCII), for case-insensitive
-- prefix search with ?name=. Rows written before this migration are folded
-- here as well as SQLite can; the service re-folds a row when it writes it.
ALTER TABLE clients ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
UPDATE clients SET name_folded = lower(name);
CREATE INDEX clients_name_folded_idx ON clients (name_folded);
