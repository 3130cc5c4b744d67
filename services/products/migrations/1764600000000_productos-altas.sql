-- Up Migration
-- Inserts are notified too, once per statement (`+`): no cached product changes with them, but the
-- cached collection pages and their totals do.
CREATE FUNCTION productos_notificar_alta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('productos_cambios', '+');
  RETURN NULL;
END
$$;

CREATE TRIGGER productos_alta AFTER INSERT ON productos
  FOR EACH STATEMENT EXECUTE FUNCTION productos_notificar_alta();

-- Down Migration
DROP TRIGGER productos_alta ON productos;
DROP FUNCTION productos_notificar_alta();
