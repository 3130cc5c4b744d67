/** Values that break a member, a parameter or a path segment: each one is invalid where it is used. */
import { MAX_INT } from '@catalogo/kit/jsonapi';
import fc from 'fast-check';
import { type Json, Raw } from './bad-input.model.js';

const ODD_CHARS = [
  'a',
  'Z',
  'ñ',
  'é',
  '€',
  '😀',
  '中',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u202e',
  '\ufeff',
  ' ',
  '"',
];

/** Exactly `min`..`min + 2000` code points (the unit the schemas' maxLength counts). */
export const longString = (min: number) =>
  fc
    .tuple(
      fc.array(fc.constantFrom(...ODD_CHARS), { minLength: 1, maxLength: 6 }),
      fc.integer({ min, max: min + 2000 }),
    )
    .map(([units, n]) => Array.from({ length: n }, (_, i) => units[i % units.length]).join(''));

export const withNul = fc
  .tuple(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }))
  .map(([a, b]) => `${a}\u0000${b}`);

/** 1 000 to 100 000 nested arrays or objects. */
export const deep = fc
  .tuple(fc.constantFrom(1_000, 10_000, 100_000), fc.boolean())
  .map(([n, arrays]) =>
    arrays ? new Raw('['.repeat(n) + ']'.repeat(n)) : new Raw(`${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  );

const NOT_JSON_NUMBERS = [
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '+1',
  '.5',
  '01',
  '1.',
  '--1',
  '1e',
  '-',
].map((text) => new Raw(text));

/** Values of any JSON type but the one the member wants (strings may still be null). */
function wrongType(wanted: 'string' | 'nullable string' | 'number'): fc.Arbitrary<Json> {
  const others: fc.Arbitrary<Json>[] = [
    fc.boolean(),
    fc.constant([]),
    fc.array(fc.integer(), { minLength: 1, maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
    deep,
  ];
  if (wanted !== 'nullable string') others.push(fc.constant(null));
  if (wanted === 'number')
    others.push(fc.string({ unit: 'binary', maxLength: 20 }), fc.integer().map(String));
  else others.push(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
  return fc.oneof(...others);
}

export function badInteger(min: number, max: number): fc.Arbitrary<Json> {
  return fc.oneof(
    fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }),
    fc.double({ min: -1e12, max: 1e12, noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom(0.5, 1.5, 1e-7, 2.000001, MAX_INT + 0.5, 1e21, -1e21, 1e308, -Number.MAX_VALUE, 5e-324),
    fc.constantFrom(new Raw('1e400'), new Raw('-1e400'), new Raw('1'.repeat(400)), ...NOT_JSON_NUMBERS),
    wrongType('number'),
  );
}

export const badPrecio: fc.Arbitrary<Json> = fc.oneof(
  fc.integer({ min: -1_000_000_000, max: 0 }),
  fc.constantFrom(
    -0.01,
    -0,
    0.001,
    0.005,
    10.001,
    19.999,
    1.000000000001,
    0.1 + 0.2,
    5e-324,
    1e-7,
    99999999.991,
  ),
  // Three decimals written out, as a client would send them.
  fc
    .tuple(
      fc.integer({ min: 0, max: 99_999_999 }),
      fc.integer({ min: 0, max: 99 }),
      fc.integer({ min: 1, max: 9 }),
    )
    .map(([units, cents, third]) => new Raw(`${units}.${String(cents).padStart(2, '0')}${third}`)),
  fc.double({ min: 100_000_000, max: 1e300, noNaN: true }),
  fc.constantFrom(new Raw('1e400'), new Raw('-1e400'), new Raw(`1${'0'.repeat(400)}`), ...NOT_JSON_NUMBERS),
  wrongType('number'),
);

export function badString(
  maxLength: number,
  options: { nullable?: boolean; nonBlank?: boolean },
): fc.Arbitrary<Json> {
  const bad: fc.Arbitrary<Json>[] = [
    withNul,
    longString(maxLength + 1),
    wrongType(options.nullable ? 'nullable string' : 'string'),
  ];
  if (options.nonBlank) bad.push(fc.constantFrom('', ' ', '\t\n', '\u00a0', '\u3000 \u2028'));
  return fc.oneof(...bad);
}

export const VALID_ID = /^[1-9][0-9]{0,9}$/;
const isValidInt = (text: string, min: number, max: number) =>
  VALID_ID.test(text) && Number(text) >= min && Number(text) <= max;

export function badIntText(min: number, max: number): fc.Arbitrary<string> {
  const options: fc.Arbitrary<string>[] = [
    fc.constantFrom(
      '',
      '0',
      '-1',
      '-0',
      '1.5',
      '1e2',
      'abc',
      '01',
      ' 1',
      '1 ',
      '+1',
      '0x10',
      'NaN',
      'Infinity',
    ),
    fc.constantFrom('\u0000', '１', '1,2', 'null', '[]', '{}', '2147483648', '9'.repeat(30), '1\u0000'),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }).map(String),
    fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !isValidInt(s, min, max)),
  ];
  if (max < Number.MAX_SAFE_INTEGER)
    options.push(fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }).map(String));
  return fc.oneof(...options);
}

const SORT_FIELDS = ['id', 'nombre', 'precio', 'created_at'];
const badSortField = fc.oneof(
  fc.constantFrom(
    '',
    '-',
    '--id',
    '+id',
    'ID',
    ' id',
    'id ',
    'descripcion',
    'updated_at',
    'precio;drop',
    'nombre.asc',
  ),
  fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !SORT_FIELDS.includes(s.replace(/^-/, ''))),
);
export const badSort = fc
  .tuple(
    fc.array(fc.constantFrom(...SORT_FIELDS, '-id', '-precio'), { maxLength: 3 }),
    badSortField,
    fc.nat(),
  )
  .map(([valid, bad, at]) => {
    const fields = [...valid];
    fields.splice(at % (fields.length + 1), 0, bad);
    return fields.join(',');
  });

export const badIdList = fc.oneof(
  fc.constantFrom('', ',', '1,,2', '1;2', 'a', '0', '-1', '1.0', '2147483648', ' , '),
  fc.integer({ min: 101, max: 300 }).map((n) => Array.from({ length: n }, (_, i) => i + 1).join(',')),
  fc
    .tuple(fc.array(fc.integer({ min: 1, max: 1000 }), { maxLength: 5 }), badIntText(1, MAX_INT))
    .map(([ids, bad]) => [...ids, bad].join(','))
    // A value bad as one integer can be good inside a list: '1,2' is two ids, ' 1' is trimmed.
    .filter((list) => list.split(',').some((part) => !isValidInt(part.trim(), 1, MAX_INT))),
);

export const missingId = fc.integer({ min: 10_000_000, max: MAX_INT });

/** Printable ASCII, the only header values HTTP lets through. */
export const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x21-\\x7e]{1,${max}}$`));
