import { AppError } from '@catalogo/kit/errors';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCents, priceToCents, purchaseTotal } from '../src/money.js';

const MAX_CENTS = 9_999_999_999;

describe('priceToCents', () => {
  it.each([
    [0.1, 10n],
    [0.01, 1n],
    [19.99, 1999n],
    [1.15, 115n],
    [4.35, 435n],
    [99999999.99, 9_999_999_999n],
    [7, 700n],
  ])('%s → %s cents', (precio, cents) => {
    expect(priceToCents(precio)).toBe(cents);
  });

  it('is exact for every price with at most two decimals up to 99999999.99', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_CENTS }), (cents) => {
        // The double nearest to cents/100 is what JSON.parse gives for the decimal text.
        const precio = Number(`${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`);
        expect(priceToCents(precio)).toBe(BigInt(cents));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('formatCents', () => {
  it.each([
    [0n, '0.00'],
    [5n, '0.05'],
    [30n, '0.30'],
    [1999n, '19.99'],
    [9_999_999_999n, '99999999.99'],
  ])('%s → %s', (cents, text) => {
    expect(formatCents(cents)).toBe(text);
  });
});

describe('purchaseTotal', () => {
  it('0.1 × 3 is exactly 0.30, not 0.30000000000000004', () => {
    expect(0.1 * 3).not.toBe(0.3);
    expect(purchaseTotal(0.1, 3)).toEqual({ unitario: '0.10', total: '0.30', cents: 30n });
  });

  it.each([
    [19.99, 3, '59.97'],
    [0.07, 100, '7.00'],
    [1.15, 7, '8.05'],
    [0.01, 2_147_483_647, '21474836.47'],
    [99999999.99, 1, '99999999.99'],
    [33333333.33, 3, '99999999.99'],
  ])('%s × %s = %s', (precio, cantidad, total) => {
    expect(purchaseTotal(precio, cantidad).total).toBe(total);
  });

  it('agrees with decimal arithmetic for any price and quantity whose total fits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        (cents, n) => {
          fc.pre(cents * n <= MAX_CENTS);
          const precio = cents / 100;
          const { unitario, total } = purchaseTotal(precio, n);
          expect(unitario).toBe(formatCents(BigInt(cents)));
          expect(total).toBe(formatCents(BigInt(cents) * BigInt(n)));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it.each([
    [99999999.99, 2],
    [50_000_000, 2],
    [0.01, 1_000_000_000_000],
    [1, 2_147_483_647],
  ])('refuses %s × %s with a 422 pointing at cantidad', (precio, cantidad) => {
    let thrown: unknown;
    try {
      purchaseTotal(precio, cantidad);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(AppError);
    const error = thrown as AppError;
    expect(error.status).toBe(422);
    expect(error.code).toBe('total_too_large');
    expect(error.toErrorObjects()[0]).toMatchObject({
      status: '422',
      title: 'Unprocessable Entity',
      source: { pointer: '/data/attributes/cantidad' },
    });
  });
});
