import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Answers a GET for a page of the console that is no file: the app's own router shows it. */
export type ConsoleFallback = (reply: FastifyReply) => FastifyReply;

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Console not built</title></head>
<body>
<h1>The console is not built</h1>
<p>Build it with <code>npm run build -w @catalogo/console</code>, then restart (<code>npm start</code>).</p>
<p>The API is served here all the same, under <code>/api</code>: see <code>docs/api.md</code>.</p>
</body></html>
`;

/**
 * Hashed file names (Vite's `assets/index-3f9a1c.js`) change with their content: cached for a
 * year. Everything else, index.html first, is revalidated on every visit (ETag and Last-Modified),
 * so a new build is seen at once.
 */
function cacheHeaders(reply: FastifyReply, path: string): void {
  const hashed = path.includes(`${sep}assets${sep}`);
  reply.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
}

/**
 * Serves the built console from `dir` at `/`. The folder is looked at once, when the gateway
 * starts: a console built later is served after a restart. Without it, `/` and every page of the
 * console answer a short page saying how to build it.
 */
export async function registerConsole(app: FastifyInstance, dir: string): Promise<ConsoleFallback> {
  if (!existsSync(join(dir, 'index.html'))) {
    const notBuilt: ConsoleFallback = (reply) =>
      reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(NOT_BUILT);
    app.get('/', (_request, reply) => notBuilt(reply));
    return notBuilt;
  }
  await app.register(fastifyStatic, {
    root: dir,
    wildcard: true,
    cacheControl: false,
    setHeaders: cacheHeaders,
  });
  return (reply) => reply.sendFile('index.html');
}
