-- Up Migration
-- The stock ledger: every change of a product's stock writes one movement saying what changed and
-- why, in the same transaction as the change, and movements are never deleted. At any moment, for
-- every product, Σ delta = cantidad and Σ delta_reservado = reservado (`npm run audit:ledger`).
--
-- Writes wait until this migration commits: the opening movements must see every stock row as it is
-- when the ledger begins, and no change may slip in between without its movement.
LOCK TABLE inventario IN EXCLUSIVE MODE;

-- Units held by active reservations: not sellable, not counted in `cantidad`.
ALTER TABLE inventario
  ADD COLUMN reservado INTEGER NOT NULL DEFAULT 0,
  ADD CONSTRAINT inventario_reservado_no_negativo CHECK (reservado >= 0);

CREATE TABLE movimientos_inventario (
  id BIGSERIAL PRIMARY KEY,
  producto_id INTEGER NOT NULL,
  causa TEXT NOT NULL,
  delta INTEGER NOT NULL,
  delta_reservado INTEGER NOT NULL,
  -- The values after the change.
  cantidad INTEGER NOT NULL,
  reservado INTEGER NOT NULL,
  reason TEXT,
  -- The purchase, order or reservation that caused the change; none for opening, set and adjustment.
  source_type TEXT,
  source_id INTEGER,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT movimientos_causa CHECK (causa IN (
    'opening', 'set', 'adjustment', 'purchase', 'cancellation', 'reservation', 'confirmation', 'release',
    'expiry')),
  CONSTRAINT movimientos_source CHECK (
    (source_type IS NULL AND source_id IS NULL)
    OR (source_type IN ('purchases', 'orders', 'reservations') AND source_id IS NOT NULL)),
  CONSTRAINT movimientos_valores CHECK (cantidad >= 0 AND reservado >= 0)
);

-- A product's ledger is read newest first, in keyset pages.
CREATE INDEX movimientos_inventario_producto_id_id_idx ON movimientos_inventario (producto_id, id DESC);

-- Never purged, never rewritten: the ledger is the record the books are checked against.
CREATE FUNCTION movimientos_inmutables() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'movimientos_inventario no admite % (el libro de stock no se modifica)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER movimientos_inmutables BEFORE UPDATE OR DELETE ON movimientos_inventario
  FOR EACH ROW EXECUTE FUNCTION movimientos_inmutables();
CREATE TRIGGER movimientos_no_truncate BEFORE TRUNCATE ON movimientos_inventario
  FOR EACH STATEMENT EXECUTE FUNCTION movimientos_inmutables();

-- The stock every product had when the ledger began.
INSERT INTO movimientos_inventario (producto_id, causa, delta, delta_reservado, cantidad, reservado)
SELECT producto_id, 'opening', cantidad, 0, cantidad, 0 FROM inventario ORDER BY producto_id;

-- Events of several products at once (an order, a reservation) concern no single product.
ALTER TABLE outbox ALTER COLUMN producto_id DROP NOT NULL;

-- The one definition of a change of stock. Every change — set, adjustment, purchase, order,
-- reservation, confirmation, release, expiry, cancellation — is this function: add `p_delta` to
-- `cantidad` and `p_delta_reservado` to `reservado` only if both stay within 0 – 2147483647 (a
-- concurrent change waits on the row lock, and the condition is judged again on the row it left),
-- then write the movement and the `inventory.updated` event. Refused, it changes nothing and answers
-- why ('insufficient' or 'overflow', a missing row being stock 0) with the stock as it is now, read
-- in a fresh snapshot: the UPDATE's own predates the row lock it may have queued on.
CREATE FUNCTION mover_stock(p_producto int, p_causa text, p_delta int, p_delta_reservado int,
                            p_reason text, p_source_type text, p_source_id int)
RETURNS TABLE (resultado text, cantidad int, reservado int)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_cantidad int;
  v_reservado int;
BEGIN
  UPDATE inventario
  SET cantidad = cantidad + p_delta, reservado = reservado + p_delta_reservado,
      updated_at = CURRENT_TIMESTAMP
  WHERE producto_id = p_producto
    AND cantidad::bigint + p_delta BETWEEN 0 AND 2147483647
    AND reservado::bigint + p_delta_reservado BETWEEN 0 AND 2147483647
  RETURNING inventario.cantidad, inventario.reservado INTO v_cantidad, v_reservado;
  IF NOT FOUND THEN
    SELECT i.cantidad, i.reservado INTO v_cantidad, v_reservado
    FROM inventario i WHERE i.producto_id = p_producto;
    v_cantidad := coalesce(v_cantidad, 0);
    v_reservado := coalesce(v_reservado, 0);
    RETURN QUERY SELECT
      CASE WHEN v_cantidad::bigint + p_delta > 2147483647 OR v_reservado::bigint + p_delta_reservado > 2147483647
           THEN 'overflow' ELSE 'insufficient' END,
      v_cantidad, v_reservado;
    RETURN;
  END IF;
  INSERT INTO movimientos_inventario
    (producto_id, causa, delta, delta_reservado, cantidad, reservado, reason, source_type, source_id)
  VALUES (p_producto, p_causa, p_delta, p_delta_reservado, v_cantidad, v_reservado, p_reason,
          p_source_type, p_source_id);
  INSERT INTO outbox (type, producto_id, data)
  VALUES ('inventory.updated', p_producto, jsonb_build_object(
    'producto_id', p_producto,
    'cantidad_anterior', v_cantidad - p_delta, 'cantidad', v_cantidad,
    'reservado_anterior', v_reservado - p_delta_reservado, 'reservado', v_reservado,
    'causa', p_causa));
  RETURN QUERY SELECT 'ok'::text, v_cantidad, v_reservado;
END $$;

-- A purchase: the stock change above, then the history row and its `purchase.completed` event, all
-- or nothing. One row comes back: the purchase and the stock left, or, refused, the stock available.
-- The purchase's id is drawn first so that its movement can name it.
CREATE FUNCTION registrar_compra(p_producto int, p_cantidad int, p_unitario numeric, p_total numeric)
RETURNS TABLE (id int, producto_id int, cantidad int, precio_unitario numeric, total numeric,
               created_at timestamp, restante int, disponible int)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_id int := nextval(pg_get_serial_sequence('historial_compras', 'id'));
  v_stock record;
  v_compra record;
BEGIN
  SELECT * INTO v_stock FROM mover_stock(p_producto, 'purchase', -p_cantidad, 0, NULL, 'purchases', v_id);
  IF v_stock.resultado <> 'ok' THEN
    RETURN QUERY SELECT NULL::int, p_producto, p_cantidad, NULL::numeric, NULL::numeric, NULL::timestamp,
                        NULL::int, v_stock.cantidad;
    RETURN;
  END IF;
  INSERT INTO historial_compras (id, producto_id, cantidad, precio_unitario, total)
  VALUES (v_id, p_producto, p_cantidad, p_unitario, p_total)
  RETURNING historial_compras.created_at, historial_compras.precio_unitario, historial_compras.total
  INTO v_compra;
  INSERT INTO outbox (type, producto_id, data)
  VALUES ('purchase.completed', p_producto, jsonb_build_object(
    'purchase_id', v_id::text, 'producto_id', p_producto, 'cantidad', p_cantidad,
    'precio_unitario', trim_scale(v_compra.precio_unitario), 'total', trim_scale(v_compra.total),
    'order_id', NULL));
  RETURN QUERY SELECT v_id, p_producto, p_cantidad, v_compra.precio_unitario::numeric,
                      v_compra.total::numeric, v_compra.created_at, v_stock.cantidad, NULL::int;
END $$;

-- Group commit: several purchases with one round trip and one commit, each exactly `registrar_compra`,
-- in the order given, so each is granted or refused on the stock the ones before it left, as if it
-- had run alone. The rules for rows locked elsewhere stay those of migration 1764510000000: with
-- p_espera_ms = 0 (a batch) the batch's stock rows are taken with SKIP LOCKED, never waiting, and the
-- purchases of a row passed over come back `bloqueado`, nothing written for them; with p_espera_ms > 0
-- (one product's purchases) the row is waited for that long at most (lock_timeout), then refused.
CREATE OR REPLACE FUNCTION registrar_compras(p_producto int[], p_cantidad int[], p_unitario numeric[],
                                             p_total numeric[], p_espera_ms int)
RETURNS TABLE (id int, producto_id int, cantidad int, precio_unitario numeric, total numeric,
               created_at timestamp, restante int, disponible int, bloqueado boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_tomados int[];
  v_bloqueados int[] := '{}';
BEGIN
  IF p_espera_ms > 0 THEN
    PERFORM set_config('lock_timeout', p_espera_ms || 'ms', true);
  ELSE
    v_tomados := ARRAY(SELECT i.producto_id FROM inventario i WHERE i.producto_id = ANY (p_producto)
                       FOR UPDATE SKIP LOCKED);
    -- Rows that exist but were not taken are locked elsewhere: a second look only when one may be.
    IF cardinality(v_tomados) < (SELECT count(DISTINCT x) FROM unnest(p_producto) AS x) THEN
      v_bloqueados := ARRAY(SELECT i.producto_id FROM inventario i
                            WHERE i.producto_id = ANY (p_producto) AND i.producto_id <> ALL (v_tomados));
    END IF;
  END IF;
  FOR i IN 1 .. cardinality(p_producto) LOOP
    IF p_producto[i] = ANY (v_bloqueados) THEN
      RETURN QUERY
        SELECT NULL::int, p_producto[i], p_cantidad[i], NULL::numeric, NULL::numeric,
               NULL::timestamp, NULL::int, NULL::int, true;
    ELSE
      RETURN QUERY
        SELECT c.id, c.producto_id, c.cantidad, c.precio_unitario, c.total, c.created_at, c.restante,
               c.disponible, false
        FROM registrar_compra(p_producto[i], p_cantidad[i], p_unitario[i], p_total[i]) AS c;
    END IF;
  END LOOP;
END $$;

-- Down Migration
-- registrar_compras as migration 1764510000000 defined it.
CREATE OR REPLACE FUNCTION registrar_compras(p_producto int[], p_cantidad int[], p_unitario numeric[], p_total numeric[],
                                  p_espera_ms int)
RETURNS TABLE (id int, producto_id int, cantidad int, precio_unitario numeric, total numeric,
               created_at timestamp, restante int, disponible int, bloqueado boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_tomados int[];
  v_bloqueados int[] := '{}';
BEGIN
  IF p_espera_ms > 0 THEN
    PERFORM set_config('lock_timeout', p_espera_ms || 'ms', true);
  ELSE
    v_tomados := ARRAY(SELECT i.producto_id FROM inventario i WHERE i.producto_id = ANY (p_producto)
                       FOR UPDATE SKIP LOCKED);
    -- Rows that exist but were not taken are locked elsewhere: a second look only when one may be.
    IF cardinality(v_tomados) < (SELECT count(DISTINCT x) FROM unnest(p_producto) AS x) THEN
      v_bloqueados := ARRAY(SELECT i.producto_id FROM inventario i
                            WHERE i.producto_id = ANY (p_producto) AND i.producto_id <> ALL (v_tomados));
    END IF;
  END IF;
  FOR i IN 1 .. cardinality(p_producto) LOOP
    IF p_producto[i] = ANY (v_bloqueados) THEN
      RETURN QUERY
        SELECT NULL::int, p_producto[i], p_cantidad[i], NULL::numeric, NULL::numeric,
               NULL::timestamp, NULL::int, NULL::int, true;
      CONTINUE;
    END IF;
    RETURN QUERY
      WITH stock AS (
        UPDATE inventario SET cantidad = cantidad - p_cantidad[i], updated_at = CURRENT_TIMESTAMP
        WHERE producto_id = p_producto[i] AND cantidad >= p_cantidad[i]
        RETURNING cantidad
      ), compra AS (
        INSERT INTO historial_compras (producto_id, cantidad, precio_unitario, total)
        SELECT p_producto[i], p_cantidad[i], p_unitario[i], p_total[i] FROM stock
        RETURNING id, producto_id, cantidad, precio_unitario, total, created_at
      ), events AS (
        INSERT INTO outbox (type, producto_id, data)
        SELECT 'purchase.completed', p_producto[i], jsonb_build_object(
          'purchase_id', compra.id::text, 'producto_id', p_producto[i], 'cantidad', p_cantidad[i],
          'precio_unitario', trim_scale(compra.precio_unitario), 'total', trim_scale(compra.total))
        FROM compra
        UNION ALL
        SELECT 'inventory.updated', p_producto[i], jsonb_build_object(
          'producto_id', p_producto[i], 'cantidad_anterior', stock.cantidad + p_cantidad[i],
          'cantidad', stock.cantidad, 'causa', 'purchase')
        FROM stock
      )
      SELECT compra.id, compra.producto_id, compra.cantidad, compra.precio_unitario::numeric,
             compra.total::numeric, compra.created_at, stock.cantidad, NULL::int, false
      FROM compra, stock;
    IF NOT FOUND THEN
      RETURN QUERY
        SELECT NULL::int, p_producto[i], p_cantidad[i], NULL::numeric, NULL::numeric,
               NULL::timestamp, NULL::int,
               coalesce((SELECT cantidad FROM inventario WHERE producto_id = p_producto[i]), 0), false;
    END IF;
  END LOOP;
END $$;

DROP FUNCTION registrar_compra(int, int, numeric, numeric);
DROP FUNCTION mover_stock(int, text, int, int, text, text, int);
-- Events of no single product (orders', reservations') have no place in the earlier outbox. Those
-- delivered go (the outbox keeps delivered events only for a while anyway); one still undelivered
-- makes this migration fail rather than be lost: let the relay deliver it first.
DELETE FROM outbox WHERE producto_id IS NULL AND published_at IS NOT NULL;
ALTER TABLE outbox ALTER COLUMN producto_id SET NOT NULL;
DROP TABLE movimientos_inventario;
DROP FUNCTION movimientos_inmutables();
ALTER TABLE inventario DROP COLUMN reservado;
