-- Up Migration
-- Reservations: stock held while the customer pays. Making one moves its units from `cantidad` to
-- `reservado`; confirming it sells them as an order at the prices fixed when it was made; cancelling
-- it, or its expiry, moves them back.
CREATE TABLE reservas (
  id SERIAL PRIMARY KEY,
  total DECIMAL(10, 2) NOT NULL,
  estado TEXT NOT NULL DEFAULT 'activa',
  expira_at TIMESTAMP NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT reservas_estado CHECK (estado IN ('activa', 'confirmada', 'cancelada', 'expirada')),
  CONSTRAINT reservas_total_positivo CHECK (total > 0)
);

CREATE TABLE reserva_lineas (
  reserva_id INTEGER NOT NULL REFERENCES reservas (id),
  linea SMALLINT NOT NULL,
  producto_id INTEGER NOT NULL,
  cantidad INTEGER NOT NULL,
  precio_unitario DECIMAL(10, 2) NOT NULL,
  total DECIMAL(10, 2) NOT NULL,
  PRIMARY KEY (reserva_id, linea),
  CONSTRAINT reserva_lineas_producto UNIQUE (reserva_id, producto_id),
  CONSTRAINT reserva_lineas_cantidad_positiva CHECK (cantidad > 0),
  CONSTRAINT reserva_lineas_total_exacto CHECK (total = precio_unitario * cantidad)
);

-- The sweeper looks for active reservations past their time; lists filter by estado, newest first.
CREATE INDEX reservas_activas_expira_at_idx ON reservas (expira_at) WHERE estado = 'activa';
CREATE INDEX reservas_estado_id_idx ON reservas (estado, id DESC);

-- The order a reservation was confirmed as (at most one).
ALTER TABLE pedidos ADD COLUMN reserva_id INTEGER UNIQUE REFERENCES reservas (id);

-- Locks the stock rows of the products in product-id order — every multi-row change takes its locks
-- in this order, so no two of them can deadlock — and answers the lines (1-based) whose quantity the
-- locked `cantidad` cannot cover, with the stock available. Shared by orders and reservations.
CREATE FUNCTION bloquear_lineas(p_producto int[], p_cantidad int[])
RETURNS TABLE (linea int, disponible int)
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM inventario WHERE producto_id = ANY (p_producto) ORDER BY producto_id FOR UPDATE;
  RETURN QUERY
    SELECT l.i::int, coalesce(inv.cantidad, 0)
    FROM unnest(p_producto, p_cantidad) WITH ORDINALITY AS l (producto, cantidad, i)
    LEFT JOIN inventario inv ON inv.producto_id = l.producto
    WHERE coalesce(inv.cantidad, 0) < l.cantidad
    ORDER BY l.i;
END $$;

-- An order, as migration 1764710000000 defined it, now also from a reservation: with `p_reserva`,
-- the units sold are the ones it holds (`reservado` goes down, ledger `confirmation`), the lines are
-- not judged again (held units cannot be short), and the order names its reservation.
DROP FUNCTION registrar_pedido(int[], int[], numeric[], numeric[], numeric);
CREATE FUNCTION registrar_pedido(p_producto int[], p_cantidad int[], p_unitario numeric[], p_total numeric[],
                                 p_total_pedido numeric, p_reserva int)
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
  IF p_reserva IS NULL THEN
    RETURN QUERY SELECT b.linea, b.disponible, NULL::int, NULL::int, NULL::timestamp
                 FROM bloquear_lineas(p_producto, p_cantidad) b;
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;

  INSERT INTO pedidos (total, reserva_id) VALUES (p_total_pedido, p_reserva)
    RETURNING pedidos.id, pedidos.created_at INTO v_pedido, v_created;
  FOR v_linea IN
    SELECT l.producto, l.cantidad FROM unnest(p_producto, p_cantidad) AS l (producto, cantidad)
    ORDER BY l.producto
  LOOP
    IF p_reserva IS NULL THEN
      SELECT * INTO v_stock
      FROM mover_stock(v_linea.producto, 'purchase', -v_linea.cantidad, 0, NULL, 'orders', v_pedido);
    ELSE
      SELECT * INTO v_stock
      FROM mover_stock(v_linea.producto, 'confirmation', 0, -v_linea.cantidad, NULL, 'reservations', p_reserva);
    END IF;
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
    'reservation_id', p_reserva::text)
  FROM unnest(p_producto, p_cantidad, p_unitario, p_total) WITH ORDINALITY AS l (producto, cantidad, unitario, total, i);
END $$;

-- The data of a reservation event: its id, its lines (producto_id, cantidad) and expira_at.
CREATE FUNCTION reserva_evento(p_reserva int) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT jsonb_build_object(
    'reservation_id', r.id::text,
    'lineas', (SELECT jsonb_agg(jsonb_build_object('producto_id', l.producto_id, 'cantidad', l.cantidad)
                                ORDER BY l.linea)
               FROM reserva_lineas l WHERE l.reserva_id = r.id),
    'expira_at', to_char(r.expira_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
  FROM reservas r WHERE r.id = p_reserva
$$;

-- A reservation: the lines judged on the locked stock as for an order; none short, each line's units
-- go from `cantidad` to `reservado` (ledger `reservation`), at the prices given, until `p_expira_en`
-- seconds from now; `reservation.created` is emitted. Short lines come back as for an order.
CREATE FUNCTION reservar(p_producto int[], p_cantidad int[], p_unitario numeric[], p_total numeric[],
                         p_total_reserva numeric, p_expira_en int)
RETURNS TABLE (linea int, disponible int, reserva_id int)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_reserva int;
  v_linea record;
  v_stock record;
BEGIN
  RETURN QUERY SELECT b.linea, b.disponible, NULL::int FROM bloquear_lineas(p_producto, p_cantidad) b;
  IF FOUND THEN
    RETURN;
  END IF;
  INSERT INTO reservas (total, expira_at)
  VALUES (p_total_reserva, date_trunc('milliseconds', LOCALTIMESTAMP + make_interval(secs => p_expira_en)))
  RETURNING reservas.id INTO v_reserva;
  INSERT INTO reserva_lineas (reserva_id, linea, producto_id, cantidad, precio_unitario, total)
  SELECT v_reserva, l.i, l.producto, l.cantidad, l.unitario, l.total
  FROM unnest(p_producto, p_cantidad, p_unitario, p_total) WITH ORDINALITY AS l (producto, cantidad, unitario, total, i);
  FOR v_linea IN
    SELECT l.producto, l.cantidad FROM unnest(p_producto, p_cantidad) AS l (producto, cantidad) ORDER BY l.producto
  LOOP
    SELECT * INTO v_stock
    FROM mover_stock(v_linea.producto, 'reservation', -v_linea.cantidad, v_linea.cantidad, NULL, 'reservations', v_reserva);
    IF v_stock.resultado <> 'ok' THEN
      RAISE EXCEPTION 'reservar: stock de % cambió bajo su bloqueo', v_linea.producto;
    END IF;
  END LOOP;
  INSERT INTO outbox (type, producto_id, data) VALUES ('reservation.created', NULL, reserva_evento(v_reserva));
  RETURN QUERY SELECT NULL::int, NULL::int, v_reserva;
END $$;

-- Gives back the units held by reservations the caller has locked and found active: every line's
-- units go from `reservado` to `cantidad`, all lines of all of them in product-id order (`p_causa`
-- `release` or `expiry`), each reservation then reads `p_estado` (`cancelada` or `expirada`) and its
-- `reservation.cancelled` or `reservation.expired` event is emitted.
CREATE FUNCTION devolver_reservas(p_reservas int[], p_causa text, p_estado text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  v_linea record;
  v_stock record;
BEGIN
  FOR v_linea IN
    SELECT l.reserva_id, l.producto_id, l.cantidad FROM reserva_lineas l
    WHERE l.reserva_id = ANY (p_reservas) ORDER BY l.producto_id, l.reserva_id
  LOOP
    SELECT * INTO v_stock
    FROM mover_stock(v_linea.producto_id, p_causa, v_linea.cantidad, -v_linea.cantidad, NULL, 'reservations',
                     v_linea.reserva_id);
    IF v_stock.resultado <> 'ok' THEN
      RAISE EXCEPTION 'devolver_reservas: % unidades del producto % no caben en el stock', v_linea.cantidad,
        v_linea.producto_id USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
  END LOOP;
  UPDATE reservas SET estado = p_estado WHERE id = ANY (p_reservas);
  INSERT INTO outbox (type, producto_id, data)
  SELECT CASE p_estado WHEN 'cancelada' THEN 'reservation.cancelled' ELSE 'reservation.expired' END, NULL,
         reserva_evento(r.id)
  FROM unnest(p_reservas) AS r (id) ORDER BY r.id;
END $$;

-- The sweep: up to `p_limite` active reservations past their time, locked with SKIP LOCKED so that the
-- sweepers of several instances (and a confirmation or cancellation in progress) never wait for each
-- other and never expire one twice, are expired. Answers how many.
CREATE FUNCTION expirar_reservas(p_limite int)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
  v_ids int[];
BEGIN
  SELECT array_agg(id) INTO v_ids FROM (
    SELECT id FROM reservas WHERE estado = 'activa' AND expira_at <= LOCALTIMESTAMP
    ORDER BY expira_at LIMIT p_limite FOR UPDATE SKIP LOCKED
  ) vencidas;
  IF v_ids IS NULL THEN
    RETURN 0;
  END IF;
  PERFORM devolver_reservas(v_ids, 'expiry', 'expirada');
  RETURN cardinality(v_ids);
END $$;

-- Down Migration
-- The earlier schema holds no reservation: the units active ones hold go back to `cantidad` first, as
-- a cancellation would (ledger `release`, `inventory.updated`), so that no unit is lost with them. No
-- `reservation.cancelled`: an event of no single product would stop the ledger's own down migration.
DO $$
DECLARE
  v_linea record;
  v_stock record;
BEGIN
  FOR v_linea IN
    SELECT l.reserva_id, l.producto_id, l.cantidad FROM reserva_lineas l JOIN reservas r ON r.id = l.reserva_id
    WHERE r.estado = 'activa' ORDER BY l.producto_id, l.reserva_id
  LOOP
    SELECT * INTO v_stock
    FROM mover_stock(v_linea.producto_id, 'release', v_linea.cantidad, -v_linea.cantidad, NULL, 'reservations',
                     v_linea.reserva_id);
    IF v_stock.resultado <> 'ok' THEN
      RAISE EXCEPTION '% unidades reservadas del producto % no caben en el stock', v_linea.cantidad,
        v_linea.producto_id USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
  END LOOP;
END $$;
DROP FUNCTION expirar_reservas(int);
DROP FUNCTION devolver_reservas(int[], text, text);
DROP FUNCTION reservar(int[], int[], numeric[], numeric[], numeric, int);
DROP FUNCTION reserva_evento(int);
DROP FUNCTION registrar_pedido(int[], int[], numeric[], numeric[], numeric, int);
DROP FUNCTION bloquear_lineas(int[], int[]);
-- registrar_pedido as migration 1764710000000 defined it.
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

ALTER TABLE pedidos DROP COLUMN reserva_id;
DROP TABLE reserva_lineas;
DROP TABLE reservas;
