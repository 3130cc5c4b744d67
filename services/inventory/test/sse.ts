import { type IncomingHttpHeaders, request } from 'node:http';
import { API_KEY } from './helpers.js';

/** One Server-Sent Events message, as an EventSource would see it, and when it arrived. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
  at: number;
}

export interface SseClient {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body of a refusal (a JSON:API error document); empty for a stream. */
  body: string;
  messages: SseMessage[];
  /** Comment lines received (heartbeats and the opening comment). */
  comments: number;
  /** Resolves once the server has ended the response cleanly; rejects if it broke. */
  ended: Promise<void>;
  /** Waits until `count` messages are in (a generous bound: a busy machine is slow). */
  waitFor: (count: number, timeoutMs?: number) => Promise<SseMessage[]>;
  close: () => void;
}

/** Opens `GET /api/events` over real HTTP and parses what arrives, frame by frame. */
export function openEvents(
  baseUrl: string,
  query = '',
  extraHeaders: Record<string, string> = {},
  key: string | null = API_KEY,
): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}/api/events${query}`, {
      headers: { accept: 'text/event-stream', ...(key ? { 'x-api-key': key } : {}), ...extraHeaders },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const messages: SseMessage[] = [];
      let comments = 0;
      let buffer = '';
      let body = '';
      const waiters = new Set<() => void>();
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: '',
        messages,
        comments: 0,
        ended: new Promise((resolveEnd, rejectEnd) => {
          res.on('end', () => resolveEnd());
          res.on('error', rejectEnd);
          res.on('aborted', () => rejectEnd(new Error('aborted')));
        }),
        waitFor: (count, timeoutMs = 10_000) =>
          new Promise((resolveWait, rejectWait) => {
            const check = () => {
              if (messages.length < count) return false;
              waiters.delete(check);
              clearTimeout(timer);
              resolveWait(messages.slice());
              return true;
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rejectWait(new Error(`${messages.length} of ${count} events after ${timeoutMs} ms`));
            }, timeoutMs);
            if (!check()) waiters.add(check);
          }),
        close: () => req.destroy(),
      };
      client.ended.catch(() => undefined);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (client.status !== 200) {
          body += chunk;
          client.body = body;
          return;
        }
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message: SseMessage = { id: undefined, event: 'message', data: '', at: performance.now() };
          let isMessage = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) {
              comments += 1;
              client.comments = comments;
              continue;
            }
            const colon = line.indexOf(':');
            const field = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, '');
            isMessage = true;
            if (field === 'id') message.id = value;
            else if (field === 'event') message.event = value;
            else if (field === 'data') message.data = message.data ? `${message.data}\n${value}` : value;
          }
          if (isMessage) messages.push(message);
        }
        for (const check of [...waiters]) check();
      });
      if (client.status !== 200) res.on('end', () => resolve(client));
      else resolve(client);
    });
    req.end();
  });
}

/** The envelope a message carries. */
export const envelopeOf = (message: SseMessage) =>
  JSON.parse(message.data) as {
    id: string;
    type: string;
    occurred_at: string;
    data: Record<string, unknown>;
  };
