-- Up Migration
-- The product catalogue, as the data model names its columns, plus the rules that protect it.
CREATE TABLE productos (
  id SERIAL PRIMARY KEY,
  nombre VARCHAR(255) NOT NULL,
  precio DECIMAL(10, 2) NOT NULL,
  descripcion TEXT,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT productos_precio_positivo CHECK (precio > 0),
  CONSTRAINT productos_nombre_no_vacio CHECK (btrim(nombre) <> ''),
  CONSTRAINT productos_descripcion_longitud CHECK (char_length(descripcion) <= 5000)
);

-- Sorting the collection by any allowed field stays an index scan; id breaks ties so pages are stable.
CREATE INDEX productos_nombre_id_idx ON productos (nombre, id);
CREATE INDEX productos_precio_id_idx ON productos (precio, id);
CREATE INDEX productos_created_at_id_idx ON productos (created_at, id);

-- filter[nombre] is a case-insensitive substring match: a trigram index serves ILIKE '%x%'.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX productos_nombre_trgm_idx ON productos USING gin (nombre gin_trgm_ops);

-- Down Migration
DROP TABLE productos;
