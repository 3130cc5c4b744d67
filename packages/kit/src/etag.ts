import { createHash } from 'node:crypto';
import { AppError } from './errors.js';

export const STALE = 'El recurso cambió; vuelva a leerlo';

/**
 * A strong entity tag for a version of a resource: a digest of whatever identifies that version (its
 * representation, or a version counter), so it changes whenever the version does.
 */
export function strongEtag(version: unknown): string {
  const text = typeof version === 'string' ? version : JSON.stringify(version);
  return `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
}

/** The entity tags of an If-Match or If-None-Match header, or `*`; undefined when it is absent. */
function tagsOf(header: string | string[] | undefined): string[] | '*' | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value.trim() === '*') return '*';
  return value
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
}

/**
 * Whether a GET's If-None-Match names the current tag (RFC 9110 §13.1.2: weak comparison, `*` for any):
 * then the answer is 304 with no body.
 */
export function notModified(header: string | string[] | undefined, etag: string): boolean {
  const tags = tagsOf(header);
  if (tags === undefined) return false;
  return tags === '*' || tags.some((tag) => tag.replace(/^W\//, '') === etag);
}

/**
 * A PATCH's precondition (RFC 9110 §13.1.1: strong comparison, `*` for any current version): with
 * If-Match and none of its tags the current one, 412 and nothing is written. Without If-Match the
 * request proceeds.
 */
export function checkIfMatch(header: string | string[] | undefined, etag: string): void {
  const tags = tagsOf(header);
  if (tags === undefined || tags === '*' || tags.includes(etag)) return;
  throw new AppError(412, 'precondition_failed', { detail: STALE, source: { header: 'If-Match' } });
}
