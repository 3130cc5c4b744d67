/**
 * The model of the bad-input generator: bodies as JSON trees that can hold what JSON.stringify
 * cannot write (raw text, duplicate members), and the draft request that faults change.
 */
import fc from 'fast-check';

/** JSON text written into a body as it is: literals JSON lacks, numbers beyond a double, deep nesting. */
export class Raw {
  constructor(readonly text: string) {}
}

/** An object written member by member, so that one name can appear twice. */
export class Members {
  constructor(readonly members: readonly (readonly [string, Json])[]) {}
}

export type Json =
  | null
  | boolean
  | number
  | string
  | Raw
  | Members
  | readonly Json[]
  | { readonly [name: string]: Json };

type JsonObject = { readonly [name: string]: Json };

export function serialize(value: Json): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Members) {
    return `{${value.members.map(([name, member]) => `${JSON.stringify(name)}:${serialize(member)}`).join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  if (isObject(value)) return serialize(new Members(Object.entries(value)));
  return JSON.stringify(value);
}

export function isObject(value: Json | undefined): value is JsonObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Raw) &&
    !(value instanceof Members)
  );
}

/**
 * The body with the member at `path` replaced by `change(current)` (removed when it answers
 * undefined), copying the objects on the way. Where the path no longer runs through plain objects
 * an earlier fault has broken the body already, and it is left as it is.
 */
export function updateIn(
  body: Json | undefined,
  path: readonly string[],
  change: (current: Json | undefined) => Json | undefined,
): Json | undefined {
  const [name, ...rest] = path;
  if (name === undefined) return change(body);
  if (!isObject(body)) return body;
  const current = Object.hasOwn(body, name) ? body[name] : undefined;
  if (rest.length > 0 && current === undefined) return body;
  const next = updateIn(current, rest, change);
  const others = Object.entries(body).filter(([member]) => member !== name);
  return Object.fromEntries(next === undefined ? others : [...others, [name, next]]);
}

/** Percent-encodes every byte but the unreserved ones, lone surrogates included (as U+FFFD). */
export function percentEncode(text: string): string {
  return Array.from(Buffer.from(text, 'utf8'), (byte) => {
    const char = String.fromCharCode(byte);
    return /[A-Za-z0-9\-_.~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

export interface Draft {
  /** The path after `/api`, as sent. */
  path: string;
  /** The path for another id segment (already encoded). */
  route: (segment: string) => string;
  /** `name=value` pairs, as sent. */
  query: string[];
  headers: Record<string, string | string[] | undefined>;
  body: Json | undefined;
  /**
   * Where to cut the serialised body, before the byte-level changes: cut after them, it could drop
   * trailing garbage and leave valid JSON.
   */
  cut: number | undefined;
  /** Byte-level changes to the serialised body, in order. */
  bytes: ((bytes: Buffer) => Buffer)[];
}

export type FaultKind =
  | 'auth'
  | 'accept'
  | 'path id'
  | 'missing resource'
  | 'media type'
  | 'json bytes'
  | 'body shape'
  | 'attribute'
  | 'query'
  | 'business'
  | 'header'
  | 'noise';

export interface Fault {
  kind: FaultKind;
  label: string;
  apply: (draft: Draft) => void;
  /** How fast-check prints the fault in a counterexample. */
  [fc.toStringMethod]: () => string;
}

export const preview = (value: Json | undefined) => {
  const text = value === undefined ? 'undefined' : serialize(value);
  return text.length > 40 ? `${text.slice(0, 40)}…(${text.length})` : text;
};

/** Kinds are set where the faults are put together (`badRequestCase`). */
export const fault = (label: string, apply: (draft: Draft) => void): Fault => ({
  kind: 'noise',
  label,
  apply,
  [fc.toStringMethod]: () => label,
});

export const kind = (k: FaultKind, arbitrary: fc.Arbitrary<Fault>) =>
  arbitrary.map((f) => ({ ...f, kind: k, [fc.toStringMethod]: () => `${k}: ${f.label}` }));

export const setAttributes = (draft: Draft, attributes: Record<string, Json>) => {
  for (const [name, value] of Object.entries(attributes)) {
    draft.body = updateIn(draft.body, ['data', 'attributes', name], () => value);
  }
};
