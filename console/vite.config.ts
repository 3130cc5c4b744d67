import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * In production the gateway serves `dist` and routes `/api/…` itself. `npm run dev` has no gateway:
 * the dev server plays its part, sending each path to the service the gateway would
 * (PRODUCTS_URL and INVENTORY_URL, default the ports `npm start` uses).
 */
const products = process.env.PRODUCTS_URL ?? 'http://127.0.0.1:3001';
const inventory = process.env.INVENTORY_URL ?? 'http://127.0.0.1:3002';
const service = (target: string, prefix: string) => ({
  target,
  rewrite: (path: string) => path.slice(prefix.length),
});

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: {
    proxy: {
      '/api/products': products,
      '/api/inventory': inventory,
      '/api/purchases': inventory,
      '/api/orders': inventory,
      '/api/reservations': inventory,
      '/api/events': inventory,
      '/services/products': service(products, '/services/products'),
      '/services/inventory': service(inventory, '/services/inventory'),
    },
  },
});
