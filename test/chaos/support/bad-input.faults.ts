/**
 * A generator of requests that must all be refused: each one is a valid request of an endpoint with
 * one to three faults applied, every fault on its own enough for a 4xx, and none able to repair
 * what another broke (a fault either breaks one more thing or leaves a broken body as it is).
 * Noise (odd but possibly valid values) is applied before the faults, so it cannot undo them.
 */
import fc from 'fast-check';
import { API_KEY, JSONAPI } from '../../../services/inventory/test/helpers.js';
import type { AttributeSpec, Endpoint, QuerySpec, Seeds } from './bad-input.endpoints.js';
import {
  type Draft,
  type Fault,
  fault,
  isObject,
  type Json,
  kind,
  Members,
  percentEncode,
  preview,
  Raw,
  serialize,
  updateIn,
} from './bad-input.model.js';
import { deep, missingId, printable, VALID_ID } from './bad-input.values.js';

/* ---------- Faults that fit every endpoint ---------- */

const authFault = fc
  .oneof(
    fc.constant(undefined),
    fc.constantFrom(
      '',
      'TEST-KEY',
      'test-ke',
      'test-keyy',
      'test_key',
      'dev-api-key',
      'null',
      'x'.repeat(5000),
    ),
    printable(64).filter((key) => key !== API_KEY),
    fc.constant<string[]>([API_KEY, API_KEY]),
  )
  .map((key) =>
    fault(`x-api-key ${JSON.stringify(key)?.slice(0, 40)}`, (d) => {
      d.headers['x-api-key'] = key;
    }),
  );

const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
/** A JSON:API entry of Accept with at least one parameter other than ext, profile (and q). */
const refusedJsonApiEntry = fc
  .tuple(
    fc.constantFrom(JSONAPI, 'Application/VND.API+JSON'),
    token.filter((name) => !['ext', 'profile', 'q'].includes(name)),
    fc.oneof(token, fc.constant('"a b"')),
    fc.option(fc.constantFrom('ext="https://x.test/e"', 'profile="https://x.test/p"', 'q=0.5')),
  )
  .map(([type, name, value, allowed]) =>
    [type, allowed, `${name}=${value}`].filter((p) => p !== null).join('; '),
  );

const acceptFault = fc
  .tuple(
    fc.array(refusedJsonApiEntry, { minLength: 1, maxLength: 3 }),
    fc.array(fc.constantFrom('*/*', 'text/html', 'application/json;q=0.9', 'garbage', ''), { maxLength: 2 }),
  )
  .map(([refused, others]) => [...refused, ...others].join(', '))
  .map((accept) =>
    fault(`accept ${accept.slice(0, 60)}`, (d) => {
      d.headers.accept = accept;
    }),
  );

const badSegment = fc.oneof(
  fc.constantFrom(
    '0',
    '-1',
    '00',
    '01',
    '1.5',
    '1e3',
    '0x1F',
    '+1',
    '2147483648',
    '4294967296',
    'null',
    'NaN',
  ),
  fc.constantFrom(
    '%00',
    '1%00',
    '%201',
    '1%20',
    '%EF%BC%91',
    '%ZZ',
    '%',
    '%E0%A4%A',
    '..',
    '%2E%2E',
    '%2F1',
    ';1',
    '1;2',
  ),
  fc.integer({ min: 11, max: 10_000 }).map((n) => '9'.repeat(n)),
  fc
    .double({ noNaN: true })
    .map(String)
    .filter((s) => !VALID_ID.test(s))
    .map(percentEncode),
  fc
    .string({ unit: 'binary', maxLength: 20 })
    .filter((s) => !VALID_ID.test(s))
    .map(percentEncode),
);

const pathFault = badSegment.map((segment) =>
  fault(`path id ${segment.slice(0, 40)}`, (d) => {
    d.path = d.route(segment);
  }),
);

const missingFault = missingId.map((id) =>
  fault(`missing id ${id}`, (d) => {
    d.path = d.route(String(id));
    d.body = updateIn(d.body, ['data', 'id'], (current) => (current === undefined ? undefined : String(id)));
  }),
);

/* ---------- Faults of request bodies ---------- */

const BAD_MEDIA_TYPES = [
  undefined,
  '',
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  `${JSONAPI}; charset=utf-8`,
  `${JSONAPI}; ext="https://x.test/e"; foo=bar`,
  `${JSONAPI}; profile=x; version=1`,
  `${JSONAPI}+xml`,
  'application/vnd.api',
  '*/*',
  'application/*',
  ';',
  `${JSONAPI};`,
  `"${JSONAPI}"`,
  `${JSONAPI}, application/json`,
];

const mediaTypeFault = fc
  .oneof(
    fc.constantFrom(...BAD_MEDIA_TYPES),
    printable(40).filter((t) => !t.toLowerCase().includes('vnd.api+json')),
  )
  .map((type) =>
    fault(`content-type ${JSON.stringify(type)}`, (d) => {
      d.headers['content-type'] = type;
    }),
  );

/** Indexes of the structural characters of a JSON text (outside strings). */
function structuralIndexes(bytes: Buffer): number[] {
  const found: number[] = [];
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (inString) {
      if (byte === 0x5c) i++;
      else if (byte === 0x22) inString = false;
      continue;
    }
    if (byte === 0x22) inString = true;
    if ([0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x22].includes(byte)) found.push(i);
  }
  return found;
}

const notWhitespace = (bytes: Uint8Array) =>
  Buffer.from(bytes)
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .trim() !== '';

const NOT_JSON_DOCUMENTS = [
  '',
  '   ',
  'NaN',
  'undefined',
  "{'data': {}}",
  '{data: {}}',
  '{"data":{},}',
  '// comment\n{}',
  '<data/>',
  'null null',
  '[1,]',
  '{"a":1}{"b":2}',
  '"unterminated',
  '{"data":{"type":"products"',
  '\uFEFF\uFEFF{}',
  '{"__proto__":{"admin":true}}',
  '{"data":{"type":"products","attributes":{"__proto__":{"x":1}}}}',
];

const textFault = fc.oneof(
  fc.nat().map((at) =>
    fault(`truncated at ${at}`, (d) => {
      d.cut = at;
    }),
  ),
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }).filter(notWhitespace), fc.boolean())
    .map(([garbage, before]) =>
      fault(`${before ? 'leading' : 'trailing'} bytes ${Buffer.from(garbage).toString('hex')}`, (d) =>
        d.bytes.push((b) => Buffer.concat(before ? [garbage, b] : [b, garbage])),
      ),
    ),
  fc.tuple(fc.nat(), fc.constantFrom(0x00, 0x01, 0xff, 0xc3, 0xed, 0x3b, 0x3d, 0x27)).map(([at, byte]) =>
    fault(`structural byte → 0x${byte.toString(16)}`, (d) =>
      d.bytes.push((b) => {
        const indexes = structuralIndexes(b);
        if (indexes.length === 0) return Buffer.concat([b, Buffer.from([byte])]);
        const copy = Buffer.from(b);
        copy[indexes[at % indexes.length]!] = byte;
        return copy;
      }),
    ),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0x1f })).map(([at, control]) =>
    fault(`raw control 0x${control.toString(16)} in a string`, (d) =>
      d.bytes.push((b) => {
        // After the opening quote of a member name or string value, where JSON forbids raw controls.
        const quotes = structuralIndexes(b).filter((i) => b[i] === 0x22);
        const where = quotes.length === 0 ? 0 : quotes[at % quotes.length]! + 1;
        return Buffer.concat([b.subarray(0, where), Buffer.from([control]), b.subarray(where)]);
      }),
    ),
  ),
  fc
    .constantFrom(...NOT_JSON_DOCUMENTS)
    .map((text) =>
      fault(`document ${JSON.stringify(text).slice(0, 40)}`, (d) => d.bytes.push(() => Buffer.from(text))),
    ),
  fc.constant(
    fault('body over 1 MiB', (d) =>
      d.bytes.push((b) => Buffer.concat([Buffer.alloc(1024 * 1024 + 1, 0x20), b])),
    ),
  ),
);

function shapeFaults(endpoint: Endpoint, valid: (seeds: Seeds) => Json, seeds: Seeds): fc.Arbitrary<Fault> {
  const data = () => (valid(seeds) as { data: Json }).data;
  const replaceBody = (label: string, body: (d: Draft) => Json | undefined) =>
    fault(label, (d) => {
      d.body = body(d);
    });
  const expected = (data() as { type: string }).type;
  const allowed = new Set(endpoint.attributes?.map((a) => a.name));
  const shapes: fc.Arbitrary<Fault>[] = [
    fc
      .constantFrom<[string, (d: Draft) => Json | undefined]>(
        ['body []', () => []],
        ['body [document]', (d) => [d.body ?? null]],
        ['body "text"', () => 'text'],
        ['body 42', () => 42],
        ['body null', () => null],
        ['body true', () => true],
        ['body {}', () => ({})],
        ['data null', () => ({ data: null })],
        ['data [data]', (d) => ({ data: [isObject(d.body) ? (d.body.data ?? null) : null] })],
        ['data "x"', () => ({ data: 'x' })],
        ['data 1', () => ({ data: 1 })],
        ['data deep', () => ({ data: new Raw(`${'['.repeat(10_000)}${']'.repeat(10_000)}`) })],
        ['datum instead of data', (d) => ({ datum: isObject(d.body) ? (d.body.data ?? null) : null })],
        ['extra top-level member', (d) => updateIn(d.body, ['extra'], () => [])],
      )
      .map(([label, body]) => replaceBody(label, body)),
    fc
      .oneof(fc.constant(undefined), fc.integer(), fc.constant(null), fc.constant([expected]), deep)
      .map((type) =>
        fault(`type ${preview(type ?? undefined)}`, (d) => {
          d.body = updateIn(d.body, ['data', 'type'], () => type);
        }),
      ),
    fc
      .oneof(
        fc.constantFrom(
          'product',
          'Products',
          'purchases',
          'inventories',
          'inventory-adjustments',
          `${expected} `,
          '',
        ),
        fc.string({ unit: 'binary', maxLength: 20 }),
      )
      .filter((type) => type !== expected)
      .map((type) =>
        fault(`type ${JSON.stringify(type)}`, (d) => {
          d.body = updateIn(d.body, ['data', 'type'], () => type);
        }),
      ),
    fc
      .oneof(fc.constant(undefined), fc.constant(null), fc.constant([]), fc.constant('x'), fc.integer(), deep)
      .map((attributes) =>
        fault(`attributes ${preview(attributes ?? undefined)}`, (d) => {
          d.body = updateIn(d.body, ['data', 'attributes'], () => attributes);
        }),
      ),
    fc
      .tuple(
        fc.constantFrom('relationships', 'links', 'attributes2', 'Type'),
        fc.constantFrom<Json>({}, [], 1),
      )
      .map(([member, value]) =>
        fault(`data.${member}`, (d) => {
          d.body = updateIn(d.body, ['data', member], () => value);
        }),
      ),
    fc
      .tuple(
        fc.oneof(
          fc.constantFrom(
            'created_at',
            'updated_at',
            'total',
            'precio_unitario',
            'producto_id',
            'id',
            'type',
          ),
          fc.constantFrom('__proto__', 'constructor', 'toString', 'NOMBRE', 'precio ', ''),
          fc.string({ unit: 'binary', maxLength: 12 }),
        ),
        fc.oneof(fc.constant<Json>({ prototype: { x: 1 } }), fc.integer(), fc.string({ maxLength: 5 }), deep),
      )
      .filter(([name]) => !allowed.has(name))
      .map(([name, value]) =>
        fault(`unknown attribute ${JSON.stringify(name)}`, (d) => {
          d.body = updateIn(d.body, ['data', 'attributes'], (attributes) =>
            isObject(attributes) ? new Members([...Object.entries(attributes), [name, value]]) : attributes,
          );
        }),
      ),
    // Duplicate top-level `data`: a valid one first, a broken one last (JSON.parse keeps the last).
    fc.constantFrom<Json>(null, [], 'x', { type: expected }).map((last) =>
      fault(`duplicate data, last ${preview(last)}`, (d) => {
        d.body = isObject(d.body)
          ? new Members([['data', data()], ...Object.entries(d.body), ['data', last]])
          : d.body;
      }),
    ),
  ];
  if (endpoint.mode === 'create') {
    shapes.push(
      fc.oneof(fc.constant<Json>('1'), fc.integer(), fc.constant(null), fc.constant('')).map((id) =>
        fault(`client id ${preview(id)}`, (d) => {
          d.body = updateIn(d.body, ['data', 'id'], () => id);
        }),
      ),
    );
  } else {
    shapes.push(
      fc
        .oneof(
          fc.constant(undefined),
          fc.integer(),
          fc.constant(null),
          fc.constantFrom('0', '-1', ' 1', '1.0'),
          missingId.map(String),
        )
        .map((id) =>
          fault(`data.id ${preview(id ?? undefined)}`, (d) => {
            d.body = updateIn(d.body, ['data', 'id'], () => id);
          }),
        ),
    );
  }
  return fc.oneof(...shapes);
}

function attributeFaults(specs: AttributeSpec[]): fc.Arbitrary<Fault> {
  const spec = fc.constantFrom(...specs);
  const options: fc.Arbitrary<Fault>[] = [
    spec.chain((s) =>
      s.invalid.map((value) =>
        fault(`${s.name}=${preview(value)}`, (d) => {
          d.body = updateIn(d.body, ['data', 'attributes', s.name], () => value);
        }),
      ),
    ),
    // The same member twice, a valid decoy first: the broken value, written last, is the one that counts.
    spec.chain((s) =>
      fc.tuple(s.decoy, s.invalid).map(([decoy, value]) =>
        fault(`duplicate ${s.name}: ${preview(decoy)} then ${preview(value)}`, (d) => {
          d.body = updateIn(d.body, ['data', 'attributes'], (attributes) =>
            isObject(attributes)
              ? new Members([
                  [s.name, decoy],
                  ...Object.entries(attributes).filter(([name]) => name !== s.name),
                  [s.name, value],
                ])
              : attributes,
          );
        }),
      ),
    ),
  ];
  const required = specs.filter((s) => s.required);
  if (required.length > 0) {
    options.push(
      fc.constantFrom(...required).map((s) =>
        fault(`without ${s.name}`, (d) => {
          d.body = updateIn(d.body, ['data', 'attributes', s.name], () => undefined);
        }),
      ),
    );
  }
  return fc.oneof(...options);
}

/* ---------- Faults of query strings ---------- */

const queryPair = (name: string, value: string) => `${percentEncode(name)}=${percentEncode(value)}`;

function queryFaults(specs: QuerySpec[]): fc.Arbitrary<Fault> {
  const names = new Set(specs.map((s) => s.name));
  return fc.oneof(
    fc.constantFrom(...specs).chain((s) =>
      s.invalid.map((value) =>
        fault(`${s.name}=${JSON.stringify(value).slice(0, 40)}`, (d) => {
          d.query.push(queryPair(s.name, value));
        }),
      ),
    ),
    fc
      .tuple(
        fc.oneof(
          fc.constantFrom(
            'include',
            'fields[products]',
            'filter[precio]',
            'page[offset]',
            'page[limit]',
            'page[number]',
          ),
          fc.constantFrom(
            'sort[]',
            'FILTER[ID]',
            'filter',
            'page',
            'q',
            '__proto__',
            'constructor',
            'toString',
            '',
          ),
          fc.string({ unit: 'binary', maxLength: 12 }),
        ),
        fc.string({ maxLength: 8 }),
      )
      .filter(([name]) => !names.has(name))
      .map(([name, value]) =>
        fault(`unknown parameter ${JSON.stringify(name)}`, (d) => {
          d.query.push(queryPair(name, value));
        }),
      ),
    fc.constantFrom(...specs).chain((s) =>
      fc.tuple(s.valid, s.valid).map(([a, b]) =>
        fault(`${s.name} twice`, (d) => {
          d.query.push(queryPair(s.name, a), queryPair(s.name, b));
        }),
      ),
    ),
    fc
      .constantFrom(...specs)
      .chain((s) =>
        s.text
          ? fc.constant(`${s.name}=1%00`)
          : fc.constantFrom(`${s.name}=%ZZ`, `${s.name}=%`, `${s.name}=%E0%A4%A`, `${s.name}=1%00`),
      )
      .map((pair) =>
        fault(`raw ${pair}`, (d) => {
          d.query.push(pair);
        }),
      ),
  );
}

/* ---------- Noise: odd values applied before the faults, valid or not ---------- */

function noise(endpoint: Endpoint): fc.Arbitrary<Fault> {
  const options: fc.Arbitrary<Fault>[] = [
    printable(40).map((id) =>
      fault(`x-request-id ${id}`, (d) => {
        d.headers['x-request-id'] = id;
      }),
    ),
    fc
      .constantFrom('*/*', JSONAPI, 'application/json', `${JSONAPI}; ext="https://x.test/e"`, 'garbage;;')
      .map((accept) =>
        fault(`accept ${accept}`, (d) => {
          d.headers.accept = accept;
        }),
      ),
  ];
  const texts = (endpoint.attributes ?? []).filter((a) =>
    ['nombre', 'descripcion', 'reason'].includes(a.name),
  );
  if (texts.length > 0) {
    options.push(
      fc
        .tuple(fc.constantFrom(...texts), fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }))
        .map(([spec, text]) =>
          fault(`${spec.name} ${JSON.stringify(text)}`, (d) => {
            d.body = updateIn(d.body, ['data', 'attributes', spec.name], () => text);
          }),
        ),
    );
  }
  if (endpoint.noise) options.push(endpoint.noise);
  const query = endpoint.query;
  if (query) {
    options.push(
      fc.constantFrom(...query).chain((s) =>
        s.valid.map((value) =>
          fault(`${s.name}=${value}`, (d) => {
            if (!d.query.some((pair) => pair.startsWith(`${percentEncode(s.name)}=`)))
              d.query.push(queryPair(s.name, value));
          }),
        ),
      ),
    );
  }
  return fc.oneof(...options);
}

/* ---------- Cases ---------- */

export interface BadRequestCase {
  id: number;
  noise: Fault[];
  faults: Fault[];
}

export function badRequestCase(endpoint: Endpoint, seeds: Seeds): fc.Arbitrary<BadRequestCase> {
  const faults: { weight: number; arbitrary: fc.Arbitrary<Fault> }[] = [
    { weight: 1, arbitrary: kind('auth', authFault) },
    { weight: 1, arbitrary: kind('accept', acceptFault) },
  ];
  if (endpoint.ids) {
    faults.push(
      { weight: 3, arbitrary: kind('path id', pathFault) },
      { weight: 2, arbitrary: kind('missing resource', missingFault) },
    );
  }
  if (endpoint.body) {
    const body = endpoint.body;
    const valid = (s: Seeds) => body(endpoint.ids?.(s)[0] ?? 0, s);
    faults.push(
      { weight: 2, arbitrary: kind('media type', mediaTypeFault) },
      { weight: 4, arbitrary: kind('json bytes', textFault) },
      { weight: 4, arbitrary: kind('body shape', shapeFaults(endpoint, valid, seeds)) },
    );
  }
  if (endpoint.attributes) {
    faults.push({ weight: 6, arbitrary: kind('attribute', attributeFaults(endpoint.attributes)) });
  }
  if (endpoint.query) faults.push({ weight: 8, arbitrary: kind('query', queryFaults(endpoint.query)) });
  if (endpoint.business) faults.push({ weight: 4, arbitrary: kind('business', endpoint.business(seeds)) });
  if (endpoint.headers) faults.push({ weight: 1, arbitrary: kind('header', endpoint.headers) });
  return fc.record({
    id: endpoint.ids ? fc.constantFrom(...endpoint.ids(seeds)) : fc.constant(0),
    noise: fc.array(noise(endpoint), { maxLength: 2 }),
    faults: fc.array(fc.oneof(...faults), { minLength: 1, maxLength: 3 }),
  });
}

export interface InjectRequest {
  method: Endpoint['method'];
  url: string;
  headers: Record<string, string | string[]>;
  payload?: Buffer;
}

/** The valid request of the case's endpoint with its noise, then its faults, applied. */
export function toRequest(endpoint: Endpoint, c: BadRequestCase, seeds: Seeds): InjectRequest {
  const body = endpoint.body?.(c.id, seeds);
  const draft: Draft = {
    path: endpoint.route(String(c.id)),
    route: endpoint.route,
    query: [],
    headers: { 'x-api-key': API_KEY, ...(body === undefined ? {} : { 'content-type': JSONAPI }) },
    body,
    cut: undefined,
    bytes: [],
  };
  for (const change of [...c.noise, ...c.faults]) change.apply(draft);
  const headers = Object.fromEntries(
    Object.entries(draft.headers).filter(
      (entry): entry is [string, string | string[]] => entry[1] !== undefined,
    ),
  );
  const url = `/api${draft.path}${draft.query.length > 0 ? `?${draft.query.join('&')}` : ''}`;
  if (body === undefined) return { method: endpoint.method, url, headers };
  const text = Buffer.from(draft.body === undefined ? '' : serialize(draft.body), 'utf8');
  // Any proper prefix of a JSON text is no JSON text (a number, the one exception, is no document either).
  const cut =
    draft.cut === undefined || text.length < 2 ? text : text.subarray(0, 1 + (draft.cut % (text.length - 1)));
  return {
    method: endpoint.method,
    url,
    headers,
    payload: draft.bytes.reduce<Buffer>((bytes, change) => change(bytes), cut),
  };
}
