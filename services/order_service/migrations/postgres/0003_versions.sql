-- version: bumped by every update; the ETag of an order is its version.
ALTER TABLE orders ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
