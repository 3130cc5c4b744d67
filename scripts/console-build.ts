/**
 * The console is served from its build (`console/dist`). `npm start` builds it when the build is
 * missing or older than any of its sources, so a fresh clone and a checkout with changed sources
 * both serve the current console, and an up-to-date one starts without the build's seconds.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** What the build depends on, besides the installed packages. */
const SOURCES = ['src', 'index.html', 'vite.config.ts', 'package.json', 'tsconfig.json'];

async function newestChange(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  const entries = await readdir(path);
  const times = await Promise.all(entries.map((entry) => newestChange(join(path, entry))));
  return Math.max(info.mtimeMs, ...times);
}

/** Whether `console/dist` is missing or older than one of its sources. */
export async function consoleIsStale(consoleDir: string): Promise<boolean> {
  const built = await stat(join(consoleDir, 'dist', 'index.html')).catch(() => undefined);
  if (!built) return true;
  const sources = await Promise.all(SOURCES.map((source) => newestChange(join(consoleDir, source))));
  return Math.max(...sources) > built.mtimeMs;
}

/**
 * Builds the console when it is stale; resolves to whether it built. The build's own output is
 * shown only when it fails (the runner's log stays one line per step).
 *
 * Two runners may start at once from one checkout (a developer's and a test's): each builds into a
 * folder of its own, and the finished build replaces `dist` only while `dist` is still stale, so
 * a gateway never serves a half-written build and the later of two builds changes nothing.
 */
export async function ensureConsoleBuilt(root: string, log: (line: string) => void): Promise<boolean> {
  const consoleDir = join(root, 'console');
  // A tree without the console's sources (an image of the services alone) serves the API only.
  if (!(await stat(join(consoleDir, 'package.json')).catch(() => undefined))) {
    log('no console sources in console/: the gateway serves the API only');
    return false;
  }
  if (!(await consoleIsStale(consoleDir))) return false;
  const startedAt = Date.now();
  log('building the console (console/dist is missing or older than its sources)');
  const outDir = join(consoleDir, `.dist-${process.pid}`);
  const child = spawn(
    'npm',
    ['run', 'build', '--silent', '-w', '@catalogo/console', '--', '--outDir', outDir],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  try {
    if (code !== 0)
      throw new Error('the console could not be built (npm run build -w @catalogo/console)', {
        cause: output.trim(),
      });
    if (await consoleIsStale(consoleDir)) {
      const dist = join(consoleDir, 'dist');
      await rm(dist, { recursive: true, force: true });
      // Another runner's build may land in between: then that one is served and this one dropped.
      await rename(outDir, dist).catch(() => undefined);
    }
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
  log(`console built in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  return true;
}
