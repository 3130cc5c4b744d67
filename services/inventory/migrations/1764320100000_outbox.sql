-- Up Migration
-- Transactional outbox: every stock change writes its events here in the same transaction, and
-- the relay delivers them afterwards. A rolled-back change leaves no event behind.
CREATE TABLE outbox (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Per product, rows are written under that product's stock row lock, so seq order is commit order.
  seq BIGSERIAL NOT NULL UNIQUE,
  type TEXT NOT NULL,
  producto_id INTEGER NOT NULL,
  data JSONB NOT NULL,
  occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  published_at TIMESTAMPTZ
);

CREATE INDEX outbox_pending_idx ON outbox (seq) WHERE published_at IS NULL;

-- Down Migration
DROP TABLE outbox;
