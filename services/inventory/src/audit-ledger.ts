/**
 * Checks the stock ledger of a live Inventory database (DATABASE_URL): for every product, Σ delta =
 * cantidad and Σ delta_reservado = reservado. Prints one line per product that disagrees and exits 1
 * if any does, 0 when the books hold. It only reads, in one snapshot (REPEATABLE READ), so that stock
 * changes committing meanwhile cannot make a sound ledger look wrong.
 */
import pg from 'pg';
import { ledgerMismatches } from './stock/stock.repository.js';

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write(
    'DATABASE_URL no está definida: indique la base de datos del servicio de inventario\n',
  );
  process.exit(2);
}
const client = new pg.Client({ connectionString: url, application_name: 'audit-ledger' });
await client.connect();
try {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const mismatches = await ledgerMismatches(client);
  const { rows } = await client.query<{ productos: number; movimientos: string }>(
    `SELECT (SELECT count(*)::int FROM inventario) AS productos,
            (SELECT count(*)::text FROM movimientos_inventario) AS movimientos`,
  );
  await client.query('COMMIT');
  const { productos, movimientos } = rows[0]!;
  for (const m of mismatches) {
    process.stdout.write(
      `producto ${m.producto_id}: cantidad ${m.cantidad}, Σ delta ${m.suma_delta}; ` +
        `reservado ${m.reservado}, Σ delta_reservado ${m.suma_delta_reservado}\n`,
    );
  }
  process.stdout.write(
    mismatches.length === 0
      ? `Libro de stock correcto: ${productos} productos, ${movimientos} movimientos\n`
      : `Libro de stock INCORRECTO: ${mismatches.length} de ${productos} productos no cuadran\n`,
  );
  process.exitCode = mismatches.length === 0 ? 0 : 1;
} finally {
  await client.end();
}
