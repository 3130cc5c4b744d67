/**
 * The console in a real browser against the whole system (`npm start`'s runner, the gateway
 * serving the built console): a person's path through every screen, with accessible locators —
 * so the labels a screen reader announces are what the test finds. Screenshots of each main screen
 * at 1280×800 and 390×844 go to test-results/console/.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchBrowser, type RunningSystem, startSystem } from './console.system.js';

interface Resource {
  id: string;
  attributes: Record<string, unknown>;
}

const SHOTS = fileURLToPath(new URL('../../test-results/console', import.meta.url));
const WIDTHS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];

if (!hasChromium) {
  console.warn('Console browser tests skipped: no Chromium at /usr/bin/chromium (set CHROMIUM_PATH).');
}

describe.skipIf(!hasChromium)('the console in Chromium', { timeout: 90_000 }, () => {
  let system: RunningSystem;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let context: BrowserContext;
  let page: Page;
  let productId: string;
  const name = `Café de prueba ${Date.now()}`;

  /** The same API the console uses, for what a test sets up or checks behind the browser's back. */
  async function api<T = Resource>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; data: T }> {
    const response = await fetch(system.url + path, {
      method,
      headers: {
        'X-API-Key': system.apiKey,
        ...(body ? { 'Content-Type': 'application/vnd.api+json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const document = (await response.json()) as { data: T };
    return { status: response.status, data: document.data };
  }

  /** playwright-core has no assertions of its own: vitest's expect.poll retries until it holds. */
  const text = (locator: Locator) =>
    expect.poll(async () => (await locator.textContent())?.trim(), { timeout: 20_000 });

  async function snap(screen: string) {
    for (const size of WIDTHS) {
      await page.setViewportSize(size);
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(SHOTS, `${screen}-${size.width}.png`), fullPage: true });
    }
    await page.setViewportSize(WIDTHS[0]!);
  }

  async function go(screen: string) {
    await page.getByRole('link', { name: screen, exact: true }).click();
    await page.getByRole('heading', { level: 2, name: screen }).waitFor();
  }

  async function pick(label: string, text: string) {
    await page.getByRole('combobox', { name: label }).fill(text);
    await page.getByRole('option', { name: new RegExp(text) }).click();
  }

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    system = await startSystem();
    browser = await launchBrowser();
    context = browser.context;
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await system?.stop();
  }, 60_000);

  it('refuses a wrong key with a 401 in plain words, then lets the right one in', async () => {
    await page.goto(system.url);
    await snap('clave');
    await page.getByLabel('API key').fill('una-clave-que-no-existe');
    await page.getByRole('button', { name: 'Entrar' }).click();
    await page.getByText('La API key no es válida').waitFor();
    await page.getByLabel('API key').fill(system.apiKey);
    await page.getByRole('button', { name: 'Entrar' }).click();
    await page.getByRole('heading', { level: 2, name: 'Productos' }).waitFor();
  });

  it('creates a product, showing the validation errors next to their fields first', async () => {
    await page.getByRole('button', { name: 'Nuevo producto' }).click();
    const dialog = page.getByRole('dialog', { name: 'Nuevo producto' });
    await dialog.getByLabel('Nombre').fill(name);
    await dialog.getByLabel('Precio (€)').fill('-3');
    await dialog.getByRole('button', { name: 'Crear' }).click();
    // The service's own message, under the field its pointer names.
    await expect.poll(() => dialog.getByLabel('Precio (€)').getAttribute('aria-invalid')).toBe('true');
    await dialog.getByText('Debe ser mayor que 0').waitFor();
    await dialog.getByLabel('Precio (€)').fill('12,5');
    await dialog.getByRole('button', { name: 'Crear' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByLabel('Buscar por nombre').fill(name);
    const row = page.getByRole('row', { name: new RegExp(name) });
    await text(row).toContain('12,50');
    productId = (await row.getByRole('cell').first().textContent())!.trim();
    expect(productId).toMatch(/^\d+$/);
    await page.getByLabel('Buscar por nombre').fill('');
    await snap('productos');
  });

  it("sets and adjusts the product's stock, and shows the ledger", async () => {
    await page.getByRole('link', { name: 'Productos', exact: true }).click();
    await page.getByLabel('Buscar por nombre').fill(name);
    await page.getByRole('link', { name: `Stock de ${name}` }).click();
    await page.getByRole('heading', { level: 2, name }).waitFor();
    await page.getByLabel('Nueva cantidad').fill('3');
    await page.getByRole('button', { name: 'Fijar' }).click();
    await text(page.getByLabel('Cantidad disponible')).toBe('3');
    await page.getByText('Stock bajo').waitFor();
    await page.getByLabel('Unidades a sumar o restar').fill('7');
    await page.getByLabel('Motivo').fill('Recepción de mercancía');
    await page.getByRole('button', { name: 'Ajustar' }).click();
    await text(page.getByLabel('Cantidad disponible')).toBe('10');
    const ledger = page.getByRole('table', { name: 'Movimientos de stock' });
    await text(ledger.getByRole('row', { name: /Recepción de mercancía/ })).toContain('+7');
    await text(ledger.getByRole('row', { name: /Fijada/ })).toContain('+3');
    await snap('stock-producto');
    await go('Stock');
    await page.getByRole('link', { name: new RegExp(name) }).waitFor();
    await snap('stock');
  });

  it('buys once on a double click, and the purchase is in the history', async () => {
    await go('Vender');
    await pick('Producto a comprar', name);
    await page.getByLabel('Unidades', { exact: true }).fill('2');
    await page.getByRole('button', { name: 'Comprar' }).dblclick();
    await page.getByText('Compra realizada').waitFor();
    const purchases = await api<Resource[]>('GET', `/api/purchases?filter[producto_id]=${productId}`);
    expect(purchases.data).toHaveLength(1);
    expect(purchases.data[0]!.attributes.cantidad).toBe(2);
    const purchaseId = purchases.data[0]!.id as string;
    await go('Historial');
    const table = page.getByRole('table', { name: 'Compras' });
    await text(table.getByRole('row', { name: new RegExp(`#${purchaseId}\\b`) })).toContain('25,00');
    await snap('historial');
  });

  it('shows a purchase made elsewhere in the live feed, and the stock on screen follows it', async () => {
    await go('En vivo');
    await page.getByText('Conexión: conectado').waitFor();
    const made = await api('POST', '/api/purchases', {
      data: { type: 'purchases', attributes: { producto_id: Number(productId), cantidad: 1 } },
    });
    expect(made.status).toBe(201);
    const feed = page.getByRole('log', { name: 'Eventos recibidos' });
    await feed.getByText(`Compra #${made.data.id}:`).waitFor();
    await feed.getByText('purchase.completed').first().waitFor();
    await snap('en-vivo');

    await page.goto(`${system.url}/#/stock/${productId}`);
    await text(page.getByLabel('Cantidad disponible')).toBe('7');
    // Another buyer, not this page: the figure changes with the event, no reload.
    await api('POST', '/api/purchases', {
      data: { type: 'purchases', attributes: { producto_id: Number(productId), cantidad: 1 } },
    });
    await text(page.getByLabel('Cantidad disponible')).toBe('6');
  });

  it('checks out a cart as an order, and says so in plain words when stock is short (409)', async () => {
    await go('Vender');
    await pick('Producto para el carrito', name);
    await page.getByLabel('Unidades para el carrito').fill('100');
    await page.getByRole('button', { name: 'Añadir al carrito' }).click();
    await page.getByRole('button', { name: 'Realizar pedido' }).click();
    await page.getByText('No hay stock suficiente: solo hay 6 unidades disponibles.').waitFor();
    await page.getByRole('button', { name: `Quitar ${name}` }).click();

    await pick('Producto para el carrito', name);
    await page.getByLabel('Unidades para el carrito').fill('2');
    await page.getByRole('button', { name: 'Añadir al carrito' }).click();
    await page.getByRole('button', { name: 'Realizar pedido' }).click();
    await page.getByText('Pedido realizado').waitFor();
    const orders = await api<Resource[]>('GET', `/api/orders?filter[producto_id]=${productId}`);
    expect(orders.data).toHaveLength(1);
    await page.getByText(`Pedido #${orders.data[0]!.id}:`).waitFor();
  });

  it('reserves a cart, counts down to its expiry, and confirms it as an order', async () => {
    await pick('Producto para el carrito', name);
    await page.getByLabel('Unidades para el carrito').fill('1');
    await page.getByRole('button', { name: 'Añadir al carrito' }).click();
    await page.getByRole('button', { name: 'Reservar' }).click();
    await page.getByText('Reserva creada').waitFor();
    const reservations = await api<Resource[]>('GET', '/api/reservations?filter[estado]=activa');
    const id = reservations.data[0]!.id as string;
    const card = page.getByRole('article', { name: `Reserva ${id}` });
    await text(card.getByRole('timer')).toMatch(/Caduca en 1[45]:\d\d/);
    await snap('vender');
    await card.getByRole('button', { name: `Confirmar reserva ${id}` }).click();
    await card.waitFor({ state: 'hidden' });
    const confirmed = await api('GET', `/api/reservations/${id}`);
    expect(confirmed.data.attributes.estado).toBe('confirmada');
  });

  it("shows each service's health, the circuit breaker and the outbox backlog", async () => {
    await go('Sistema');
    for (const service of ['Pasarela', 'Productos', 'Inventario'])
      await page.getByRole('region', { name: service }).getByText('Disponible').waitFor();
    await text(page.getByRole('region', { name: 'Cortocircuito hacia Productos' })).toContain('Cerrado');
    await text(page.getByRole('region', { name: 'Eventos pendientes de publicar' })).toMatch(/\d/);
    await snap('sistema');
  });
});
