/**
 * The gateway's own endpoints: /health reports both services (503 naming the one that fails, its
 * result reused for a second so that hits cost the services nothing) and /metrics counts requests
 * by route and status.
 */
import { createServer } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closedPortUrl, type Gateway, type Stub, startGateway, startStub } from './helpers.js';

let products: Stub;
let inventory: Stub;
const gateways: Gateway[] = [];

beforeAll(async () => {
  products = await startStub();
  inventory = await startStub();
});

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.close()));
  await Promise.all([products?.close(), inventory?.close()]);
});

async function gatewayFor(upstreams: { products: string; inventory: string }) {
  const gateway = await startGateway(upstreams);
  gateways.push(gateway);
  return gateway;
}

it('/health is 200 when both services answer 200 on theirs, and asks them at most once a second', async () => {
  let asked = 0;
  products.server.on('request', (req) => {
    if (req.url === '/health') asked += 1;
  });
  const gateway = await gatewayFor({ products: products.url, inventory: inventory.url });
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${gateway.url}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe('{"status":"ok","checks":{"products":"ok","inventory":"ok"}}');
  }
  // Five hits within well under a second on an idle machine: typically one run; never five.
  expect(asked).toBeGreaterThanOrEqual(1);
  expect(asked).toBeLessThan(5);
});

it('/health is 503 and names the service that is down', async () => {
  const gateway = await gatewayFor({ products: products.url, inventory: await closedPortUrl() });
  const res = await fetch(`${gateway.url}/health`);
  expect(res.status).toBe(503);
  expect(await res.json()).toEqual({ status: 'error', checks: { products: 'ok', inventory: 'error' } });
});

it('/health is 503 when a service answers, but not 200 on its own /health', async () => {
  const sick = createServer((_req, res) => res.writeHead(503).end()).listen(0, '127.0.0.1');
  await new Promise((resolve) => sick.once('listening', resolve));
  const address = sick.address() as { port: number };
  try {
    const gateway = await gatewayFor({
      products: `http://127.0.0.1:${address.port}`,
      inventory: inventory.url,
    });
    const res = await fetch(`${gateway.url}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'error', checks: { products: 'error', inventory: 'ok' } });
  } finally {
    sick.closeAllConnections();
    sick.close();
  }
});

it('/metrics counts forwarded requests by route template and status', async () => {
  const gateway = await gatewayFor({ products: products.url, inventory: inventory.url });
  await (await fetch(`${gateway.url}/api/products/1`)).text();
  await (await fetch(`${gateway.url}/api/products/2`)).text();
  await (await fetch(`${gateway.url}/api/nothing`)).text();
  const res = await fetch(`${gateway.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text).toMatch(
    /^http_requests_total\{method="GET",route="\/api\/products\/\*",status="200",service="gateway"\} 2$/m,
  );
  expect(text).toMatch(
    /^http_requests_total\{method="GET",route="\/api\/\*",status="404",service="gateway"\} 1$/m,
  );
  expect(text).toContain('http_request_duration_seconds_bucket');
});
