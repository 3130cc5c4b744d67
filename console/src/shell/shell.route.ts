import { useSyncExternalStore } from 'react';

/**
 * Screens live in the URL's hash (`#/stock/12`): links, the back button and reloads work, and the
 * gateway serves the same `index.html` whatever the path.
 */
export type Route =
  | { screen: 'productos' }
  | { screen: 'stock'; id?: string }
  | { screen: 'vender' }
  | { screen: 'historial' }
  | { screen: 'en-vivo' }
  | { screen: 'sistema' };

export function parseRoute(hash: string): Route {
  const [screen, id] = hash.replace(/^#\/?/, '').split('/');
  switch (screen) {
    case 'stock':
      return id && /^\d+$/.test(id) ? { screen, id } : { screen };
    case 'vender':
    case 'historial':
    case 'en-vivo':
    case 'sistema':
      return { screen };
    default:
      return { screen: 'productos' };
  }
}

const subscribe = (onChange: () => void) => {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
};

export function useRoute(): Route {
  return parseRoute(useSyncExternalStore(subscribe, () => window.location.hash));
}

export const href = (screen: Route['screen'], id?: string) => `#/${screen}${id ? `/${id}` : ''}`;
