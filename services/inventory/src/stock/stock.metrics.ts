import { Counter, type Registry } from 'prom-client';
import type { Causa } from './stock.repository.js';

/** `stock_changes_total{causa}`: ledger movements committed by this instance, by cause. */
export type StockChanges = Counter<'causa'>;

/** The causes a running service writes (`opening` is the ledger migration's alone). */
const CAUSES: Exclude<Causa, 'opening'>[] = [
  'set',
  'adjustment',
  'purchase',
  'cancellation',
  'reservation',
  'confirmation',
  'release',
  'expiry',
];

/**
 * One movement counted per product line, as the ledger writes them, and only once its transaction
 * has committed: a change rolled back is counted nowhere. Each instance counts what it committed,
 * so the sum over instances is exact. Every cause is exported from the start, at 0, so a rate over
 * one never lacks its series.
 */
export function createStockChanges(registry: Registry): StockChanges {
  const counter = new Counter({
    name: 'stock_changes_total',
    help: 'Stock movements (ledger rows) committed, by cause',
    labelNames: ['causa'] as const,
    registers: [registry],
  });
  for (const causa of CAUSES) counter.inc({ causa }, 0);
  return counter;
}
