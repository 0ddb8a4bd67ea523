import { ClientError, ClientErrorCode } from '../errors.js';
import type { ClientStore } from './client-store.js';

/**
 * `store` as MessengerClient uses it: every call refused (STORE_CLOSED) once `isClosed()`, so a
 * closed client writes nothing; `close` does nothing (the store belongs to the caller).
 */
export function guardStore(store: ClientStore, isClosed: () => boolean): ClientStore {
  const check = (what: string) => {
    if (isClosed()) {
      throw new ClientError(ClientErrorCode.StoreClosed, `${what}: the client is closed; open a new one`);
    }
  };
  return {
    get: async (key) => (check('get'), store.get(key)),
    list: async (prefix) => (check('list'), store.list(prefix)),
    write: async (batch) => (check('write'), store.write(batch)),
    close: async () => undefined,
  };
}
