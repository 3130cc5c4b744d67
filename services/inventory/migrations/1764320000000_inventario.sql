-- Up Migration
-- The stock and the purchase history, as the data model names their columns, plus the rules that protect them.
CREATE TABLE inventario (
  id SERIAL PRIMARY KEY,
  producto_id INTEGER NOT NULL UNIQUE,
  cantidad INTEGER NOT NULL DEFAULT 0,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  -- The last line of defence against overselling: no code path can leave stock negative.
  CONSTRAINT inventario_cantidad_no_negativa CHECK (cantidad >= 0),
  CONSTRAINT inventario_producto_positivo CHECK (producto_id > 0)
);

CREATE TABLE historial_compras (
  id SERIAL PRIMARY KEY,
  producto_id INTEGER NOT NULL,
  cantidad INTEGER NOT NULL,
  precio_unitario DECIMAL(10, 2),
  total DECIMAL(10, 2),
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT historial_compras_cantidad_positiva CHECK (cantidad > 0),
  CONSTRAINT historial_compras_precio_positivo CHECK (precio_unitario > 0),
  CONSTRAINT historial_compras_total_exacto CHECK (total = precio_unitario * cantidad)
);

-- History is read newest first (id descending), globally through the primary key and per product
-- through this index; both are keyset scans, as fast on page 10 000 as on page 1.
CREATE INDEX historial_compras_producto_id_id_idx ON historial_compras (producto_id, id DESC);

-- Down Migration
DROP TABLE historial_compras;
DROP TABLE inventario;
