import { Text } from '@mantine/core';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatDate } from '../api/api.format';
import type { Movement } from '../api/api.types';

const time = new Intl.DateTimeFormat('es-ES', { hour: '2-digit', minute: '2-digit' });

/**
 * Stock over time, drawn from the ledger: each movement holds the figures right after it, so the
 * line steps at each movement and runs flat until the next one.
 */
export function StockChart(props: { movements: Movement[]; now: { cantidad: number; reservado: number } }) {
  if (props.movements.length === 0) return <Text c="dimmed">Sin movimientos: nada que dibujar todavía.</Text>;
  const points = [...props.movements]
    .reverse()
    .map((m) => ({ t: Date.parse(m.created_at), cantidad: m.cantidad, reservado: m.reservado }));
  points.push({ t: Date.now(), ...props.now });
  const first = points[0]!.t;
  const last = points.at(-1)!.t;
  const summary = `Gráfico del stock: de ${points[0]!.cantidad} a ${props.now.cantidad} unidades entre ${formatDate(
    new Date(first).toISOString(),
  )} y ahora.`;
  return (
    <figure style={{ margin: 0 }} aria-label={summary}>
      <ResponsiveContainer width="100%" height={240}>
        <LineChart data={points} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis
            dataKey="t"
            type="number"
            scale="time"
            domain={[first, last]}
            tickFormatter={(t: number) => time.format(t)}
          />
          <YAxis allowDecimals={false} width={48} />
          <Tooltip labelFormatter={(t) => formatDate(new Date(Number(t)).toISOString())} />
          <Legend />
          <Line
            type="stepAfter"
            dataKey="cantidad"
            name="Cantidad"
            stroke="#0ca678"
            dot={false}
            isAnimationActive={false}
          />
          <Line
            type="stepAfter"
            dataKey="reservado"
            name="Reservado"
            stroke="#f08c00"
            dot={false}
            isAnimationActive={false}
          />
        </LineChart>
      </ResponsiveContainer>
      <figcaption>
        <Text size="xs" c="dimmed">
          {summary}
        </Text>
      </figcaption>
    </figure>
  );
}
