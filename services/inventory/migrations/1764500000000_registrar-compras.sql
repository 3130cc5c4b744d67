-- Up Migration
-- Several purchases in one call: the Inventory service records the purchases that arrive while it
-- is writing others with one round trip and one commit for all of them (group commit).
--
-- Each purchase runs as the very statement of `recordPurchase` (purchases.repository.ts), one after
-- the other in the order given, so each is granted or refused on the stock the ones before it left,
-- exactly as if it had run alone; a refused one reads the stock again in a statement of its own
-- (a fresh snapshot) for the 409's `meta.disponible`. One row per purchase comes back, in order.
-- Both must stay the same statement: the tests record the same purchases both ways and compare.
--
-- PL/pgSQL, not SQL: its statements are planned once per connection and reused (a SQL function's are
-- planned again on every call before PostgreSQL 18).
--
-- lock_timeout: a batch waiting on a row lock held elsewhere (an operator's open transaction, say)
-- holds up every purchase in it, of every product, and keeps the rows it already updated locked. Past
-- 200 ms it gives up (55P03) and rolls back, and the service records those purchases one by one, so
-- only the locked product's purchases wait for the lock.
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

-- Down Migration
DROP FUNCTION registrar_compras(int[], int[], numeric[], numeric[]);
