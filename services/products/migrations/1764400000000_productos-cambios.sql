-- Up Migration
-- Every committed change to a product is notified on `productos_cambios` (its id; `*` for a
-- truncate), whoever made it: the Products instances keep their product caches exact from it.
-- Inserts are not notified: a cache never keeps a product it did not find.
CREATE FUNCTION productos_notificar_cambio() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('productos_cambios', '*');
  ELSE
    PERFORM pg_notify('productos_cambios', OLD.id::text);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER productos_cambio_fila AFTER UPDATE OR DELETE ON productos
  FOR EACH ROW EXECUTE FUNCTION productos_notificar_cambio();
CREATE TRIGGER productos_cambio_tabla AFTER TRUNCATE ON productos
  FOR EACH STATEMENT EXECUTE FUNCTION productos_notificar_cambio();

-- Down Migration
DROP TRIGGER productos_cambio_tabla ON productos;
DROP TRIGGER productos_cambio_fila ON productos;
DROP FUNCTION productos_notificar_cambio();
