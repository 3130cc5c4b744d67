/**
 * The floor of the product scenarios: a bare Fastify server (no plugins, no hooks, no logger) that
 * answers the URLs the Products service answered with the very same bytes and the same headers
 * (`content-type: application/vnd.api+json`, a fresh `x-request-id`). What the service spends
 * above this floor is its own work: auth, negotiation, validation, the query, serialization, metrics.
 *
 * Environment: PORT, HOST, FLOOR_RESPONSES (a JSON file mapping each URL to its body).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';

const MEDIA_TYPE = 'application/vnd.api+json';

const file = process.env.FLOOR_RESPONSES;
if (!file) throw new Error('FLOOR_RESPONSES is required');
const bodies = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
// Buffers: Fastify would add `; charset=utf-8` to the content type of a string body.
const responses = new Map(Object.entries(bodies).map(([url, body]) => [url, Buffer.from(body)]));

const app = Fastify();
const answer = async (request: FastifyRequest, reply: FastifyReply) => {
  const body = responses.get(request.url);
  reply.header('x-request-id', randomUUID()).type(MEDIA_TYPE);
  if (body === undefined) return reply.code(404).send(Buffer.from('{"errors":[]}'));
  return reply.send(body);
};
app.get('/api/products/:id', answer);
app.get('/api/products', answer);
app.get('/health', async () => ({ status: 'ok' }));

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void app.close().then(() => process.exit(0)));
}
