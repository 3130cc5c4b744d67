-- Up Migration
-- Idempotency keys of POST /api/purchases (docs/api.md §3). The database, not an instance's memory,
-- decides who owns a key: several Inventory instances share this table.
CREATE TABLE idempotency_keys (
  -- SHA-256 hex of the API key that sent the request: keys are scoped per client.
  client_id TEXT NOT NULL,
  key TEXT NOT NULL,
  -- SHA-256 hex of the canonical JSON of the parsed body: the same key with another body is a 422.
  fingerprint TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'in_flight',
  -- Identifies the current owner of an in-flight claim; completing or releasing checks it, so a
  -- request whose claim was taken over after its lease expired cannot record a second purchase.
  token UUID NOT NULL,
  lease_until TIMESTAMPTZ,
  response_status SMALLINT,
  response_location TEXT,
  -- The response body exactly as first sent, replayed byte for byte.
  response_body TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  completed_at TIMESTAMPTZ,
  PRIMARY KEY (client_id, key),
  CONSTRAINT idempotency_keys_state CHECK (state IN ('in_flight', 'done')),
  CONSTRAINT idempotency_keys_in_flight_has_lease CHECK (state <> 'in_flight' OR lease_until IS NOT NULL),
  CONSTRAINT idempotency_keys_done_has_response
    CHECK (state <> 'done' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- The periodic purge deletes by age.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Delivered outbox rows are purged by the time they were delivered.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Down Migration
DROP INDEX outbox_published_at_idx;
DROP TABLE idempotency_keys;
