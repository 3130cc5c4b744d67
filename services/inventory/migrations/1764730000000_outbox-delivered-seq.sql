-- Up Migration
-- The order in which the relay delivered the events, for the live stream (GET /api/events): `seq`
-- is taken at INSERT, but transactions commit out of `seq` order, so "rows past the last seq seen"
-- could skip a row that commits later with a lower seq. `delivered_seq` is taken when the relay
-- marks a batch delivered: only one relay marks at a time and each mark commits before the next
-- begins, so a reader that has seen every row up to N will never see a row below N appear later.
CREATE SEQUENCE outbox_delivered_seq AS BIGINT;
ALTER TABLE outbox ADD COLUMN delivered_seq BIGINT;

-- Events delivered before the column existed are numbered in the order they were written.
UPDATE outbox o SET delivered_seq = n.rn
FROM (SELECT id, row_number() OVER (ORDER BY seq) AS rn FROM outbox WHERE published_at IS NOT NULL) n
WHERE o.id = n.id;
SELECT setval('outbox_delivered_seq', max(delivered_seq)) FROM outbox HAVING max(delivered_seq) IS NOT NULL;

CREATE UNIQUE INDEX outbox_delivered_idx ON outbox (delivered_seq) WHERE delivered_seq IS NOT NULL;

-- Down Migration
DROP INDEX outbox_delivered_idx;
ALTER TABLE outbox DROP COLUMN delivered_seq;
DROP SEQUENCE outbox_delivered_seq;
