-- Up Migration
-- Orders: a cart checked out at once, every line sold or none. Each line is a purchase of its own
-- (historial_compras) that names its order and its position in it.
CREATE TABLE pedidos (
  id SERIAL PRIMARY KEY,
  total DECIMAL(10, 2) NOT NULL,
  estado TEXT NOT NULL DEFAULT 'completado',
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  cancelado_at TIMESTAMP,
  CONSTRAINT pedidos_estado CHECK (estado IN ('completado', 'cancelado')),
  CONSTRAINT pedidos_cancelado_at CHECK ((estado = 'cancelado') = (cancelado_at IS NOT NULL)),
  CONSTRAINT pedidos_total_positivo CHECK (total > 0)
);

ALTER TABLE historial_compras
  ADD COLUMN estado TEXT NOT NULL DEFAULT 'completada',
  ADD COLUMN cancelada_at TIMESTAMP,
  ADD COLUMN pedido_id INTEGER REFERENCES pedidos (id),
  ADD COLUMN linea SMALLINT,
  ADD CONSTRAINT historial_compras_estado CHECK (estado IN ('completada', 'cancelada')),
  ADD CONSTRAINT historial_compras_cancelada_at CHECK ((estado = 'cancelada') = (cancelada_at IS NOT NULL)),
  ADD CONSTRAINT historial_compras_linea CHECK ((pedido_id IS NULL) = (linea IS NULL));

-- An order's lines, in line order; and each product at most once per order.
CREATE UNIQUE INDEX historial_compras_pedido_linea_idx ON historial_compras (pedido_id, linea)
  WHERE pedido_id IS NOT NULL;
CREATE UNIQUE INDEX historial_compras_pedido_producto_idx ON historial_compras (pedido_id, producto_id)
  WHERE pedido_id IS NOT NULL;

-- An order: lock the stock rows of all its products in product-id order (so that two orders, or an
-- order and a group-commit batch, whatever the order of their lines, never deadlock), then judge
-- every line on the locked stock. One short line or more: nothing is written and one row per short
-- line comes back, with its position (1-based) and the stock available. Otherwise the order, one
-- purchase per line, each line's stock change through `mover_stock` (in product-id order), one
-- `purchase.completed` per line and the `order.completed` event; one row per line comes back with
-- the ids. Prices and totals are the caller's, exact decimals.
CREATE FUNCTION registrar_pedido(p_producto int[], p_cantidad int[], p_unitario numeric[], p_total numeric[],
                                 p_total_pedido numeric)
RETURNS TABLE (linea int, disponible int, pedido_id int, compra_id int, created_at timestamp)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_pedido int;
  v_created timestamp;
  v_linea record;
  v_stock record;
BEGIN
  PERFORM 1 FROM inventario WHERE producto_id = ANY (p_producto) ORDER BY producto_id FOR UPDATE;
  RETURN QUERY
    SELECT l.i::int, coalesce(inv.cantidad, 0), NULL::int, NULL::int, NULL::timestamp
    FROM unnest(p_producto, p_cantidad) WITH ORDINALITY AS l (producto, cantidad, i)
    LEFT JOIN inventario inv ON inv.producto_id = l.producto
    WHERE coalesce(inv.cantidad, 0) < l.cantidad
    ORDER BY l.i;
  IF FOUND THEN
    RETURN;
  END IF;

  INSERT INTO pedidos (total) VALUES (p_total_pedido) RETURNING pedidos.id, pedidos.created_at
    INTO v_pedido, v_created;
  FOR v_linea IN
    SELECT l.producto, l.cantidad FROM unnest(p_producto, p_cantidad) AS l (producto, cantidad)
    ORDER BY l.producto
  LOOP
    SELECT * INTO v_stock
    FROM mover_stock(v_linea.producto, 'purchase', -v_linea.cantidad, 0, NULL, 'orders', v_pedido);
    IF v_stock.resultado <> 'ok' THEN
      RAISE EXCEPTION 'registrar_pedido: stock de % cambió bajo su bloqueo', v_linea.producto;
    END IF;
  END LOOP;
  RETURN QUERY
    WITH compras AS (
      INSERT INTO historial_compras (producto_id, cantidad, precio_unitario, total, pedido_id, linea, created_at)
      SELECT l.producto, l.cantidad, l.unitario, l.total, v_pedido, l.i, v_created
      FROM unnest(p_producto, p_cantidad, p_unitario, p_total) WITH ORDINALITY
           AS l (producto, cantidad, unitario, total, i)
      ORDER BY l.i
      RETURNING historial_compras.id, historial_compras.producto_id, historial_compras.cantidad,
                historial_compras.precio_unitario, historial_compras.total, historial_compras.linea
    ), eventos AS (
      INSERT INTO outbox (type, producto_id, data)
      SELECT 'purchase.completed', c.producto_id, jsonb_build_object(
        'purchase_id', c.id::text, 'producto_id', c.producto_id, 'cantidad', c.cantidad,
        'precio_unitario', trim_scale(c.precio_unitario), 'total', trim_scale(c.total),
        'order_id', v_pedido::text)
      FROM compras c
    )
    SELECT c.linea::int, NULL::int, v_pedido, c.id, v_created FROM compras c ORDER BY c.linea;
  INSERT INTO outbox (type, producto_id, data)
  SELECT 'order.completed', NULL, jsonb_build_object(
    'order_id', v_pedido::text,
    'lineas', jsonb_agg(jsonb_build_object(
      'producto_id', l.producto, 'cantidad', l.cantidad,
      'precio_unitario', trim_scale(l.unitario), 'total', trim_scale(l.total)) ORDER BY l.i),
    'total', trim_scale(p_total_pedido),
    'reservation_id', NULL)
  FROM unnest(p_producto, p_cantidad, p_unitario, p_total) WITH ORDINALITY AS l (producto, cantidad, unitario, total, i);
END $$;

-- Down Migration
DROP FUNCTION registrar_pedido(int[], int[], numeric[], numeric[], numeric);
DROP INDEX historial_compras_pedido_producto_idx;
DROP INDEX historial_compras_pedido_linea_idx;
ALTER TABLE historial_compras
  DROP COLUMN linea, DROP COLUMN pedido_id, DROP COLUMN cancelada_at, DROP COLUMN estado;
DROP TABLE pedidos;
