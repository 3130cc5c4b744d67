-- Up Migration
-- registrar_compras never waits without bound for a stock row locked elsewhere (an operator's open
-- transaction, another instance's statement), and tells which purchases met such a row.
--
-- p_espera_ms = 0, a batch: the batch's stock rows are locked first, all at once, passing over
-- those locked elsewhere (SKIP LOCKED, which never waits, so it cannot deadlock either). The
-- purchases of a row passed over are not attempted: they come back with `bloqueado` true, nothing
-- written for them, and the service records them by statements of their own. The others run as
-- before, each the very statement of `recordPurchase` (purchases.repository.ts), in the order given.
-- A product without a stock row is not "locked": its purchases are refused as before (409).
--
-- p_espera_ms > 0, one product's purchase: waits that long at most for its row (lock_timeout,
-- local to the statement's transaction), then PostgreSQL refuses it (55P03) and nothing is written.
DROP FUNCTION registrar_compras(int[], int[], numeric[], numeric[]);

CREATE FUNCTION registrar_compras(p_producto int[], p_cantidad int[], p_unitario numeric[], p_total numeric[],
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

-- Down Migration
DROP FUNCTION registrar_compras(int[], int[], numeric[], numeric[], int);

-- The function as migration 1764500000000 made it.
CREATE FUNCTION registrar_compras(p_producto int[], p_cantidad int[], p_unitario numeric[], p_total numeric[])
RETURNS TABLE (id int, producto_id int, cantidad int, precio_unitario numeric, total numeric,
               created_at timestamp, restante int, disponible int)
LANGUAGE plpgsql
SET lock_timeout = '200ms'
AS $$
#variable_conflict use_column
BEGIN
  FOR i IN 1 .. cardinality(p_producto) LOOP
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
             compra.total::numeric, compra.created_at, stock.cantidad, NULL::int
      FROM compra, stock;
    IF NOT FOUND THEN
      RETURN QUERY
        SELECT NULL::int, p_producto[i], p_cantidad[i], NULL::numeric, NULL::numeric,
               NULL::timestamp, NULL::int,
               coalesce((SELECT cantidad FROM inventario WHERE producto_id = p_producto[i]), 0);
    END IF;
  END LOOP;
END $$;
