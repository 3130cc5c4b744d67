import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { ApiError } from '../api/api.client';
import { SessionProvider, useStoredKey } from '../api/api.session';
import { HistoryScreen } from '../history/history.screen';
import { LiveProvider } from '../live/live.context';
import { LiveScreen } from '../live/live.screen';
import { ProductsScreen } from '../products/products.screen';
import { SellScreen } from '../selling/sell.screen';
import { StockDetailScreen } from '../stock/stock.detail';
import { StockScreen } from '../stock/stock.screen';
import { SystemScreen } from '../system/system.screen';
import { Layout } from './shell.layout';
import { type Route, useRoute } from './shell.route';
import { SignIn } from './shell.sign-in';

const EXPIRED = 'La API key dejó de ser válida. Introduzca una válida para continuar.';

function Screen({ route }: { route: Route }) {
  switch (route.screen) {
    case 'productos':
      return <ProductsScreen />;
    case 'stock':
      return route.id ? <StockDetailScreen id={route.id} /> : <StockScreen />;
    case 'vender':
      return <SellScreen />;
    case 'historial':
      return <HistoryScreen />;
    case 'en-vivo':
      return <LiveScreen />;
    case 'sistema':
      return <SystemScreen />;
  }
}

export function App() {
  const { key, reason, signIn, signOut } = useStoredKey();
  const route = useRoute();
  // A 401 anywhere means the key stopped working (rotated away): back to the key screen.
  const [client] = useState(() => {
    const onError = (error: unknown) => {
      if (error instanceof ApiError && error.status === 401) signOut(EXPIRED);
    };
    return new QueryClient({
      queryCache: new QueryCache({ onError }),
      mutationCache: new MutationCache({ onError }),
      defaultOptions: {
        queries: {
          staleTime: 5_000,
          retry: (count, error) => error instanceof ApiError && error.status >= 500 && count < 2,
        },
      },
    });
  });

  // Nothing read with one key is shown to the next.
  useEffect(() => {
    if (!key) client.clear();
  }, [key, client]);

  if (!key) return <SignIn onSignIn={signIn} reason={reason} />;
  return (
    <QueryClientProvider client={client}>
      <SessionProvider apiKey={key} signOut={signOut}>
        <LiveProvider apiKey={key}>
          <Layout route={route}>
            <Screen route={route} />
          </Layout>
        </LiveProvider>
      </SessionProvider>
    </QueryClientProvider>
  );
}
