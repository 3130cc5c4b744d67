import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from 'react';
import { type ApiClient, createApiClient } from './api.client';

const STORAGE_KEY = 'catalogo.apiKey';

interface Session {
  api: ApiClient;
  signOut: (reason?: string) => void;
}

const SessionContext = createContext<Session | null>(null);

export function useApi(): ApiClient {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useApi outside a signed-in session');
  return session.api;
}

export function useSignOut(): (reason?: string) => void {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSignOut outside a signed-in session');
  return session.signOut;
}

/**
 * The key lives in sessionStorage: it survives a reload but not the closing of the tab, and it is
 * never written anywhere a later visitor of the machine would find it.
 */
export function useStoredKey() {
  const [key, setKey] = useState<string | null>(() => sessionStorage.getItem(STORAGE_KEY));
  const [reason, setReason] = useState<string | undefined>();
  const signIn = useCallback((next: string) => {
    sessionStorage.setItem(STORAGE_KEY, next);
    setReason(undefined);
    setKey(next);
  }, []);
  const signOut = useCallback((why?: string) => {
    sessionStorage.removeItem(STORAGE_KEY);
    setReason(why);
    setKey(null);
  }, []);
  return { key, reason, signIn, signOut };
}

export function SessionProvider(props: {
  apiKey: string;
  signOut: (reason?: string) => void;
  children: ReactNode;
}) {
  const { apiKey, signOut, children } = props;
  const value = useMemo(() => ({ api: createApiClient(apiKey), signOut }), [apiKey, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
