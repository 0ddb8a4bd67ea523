/**
 * Every relay migration, oldest first. The only way the relay's schema changes: add a new file
 * here, never edit one that has shipped. Hosts that run migrations with their own DataSource add
 * `RELAY_MIGRATIONS` to its `migrations` list.
 */
import { RelayInitialSchema1795600000000 } from './1795600000000-relay-initial-schema.js';
import { SocketIoAttachments1795700000000 } from './1795700000000-socket-io-attachments.js';
import { StoreMailFunction1795800000000 } from './1795800000000-store-mail-function.js';

export const RELAY_MIGRATIONS = [
  RelayInitialSchema1795600000000,
  SocketIoAttachments1795700000000,
  StoreMailFunction1795800000000,
] as const;

export { RelayInitialSchema1795600000000, SocketIoAttachments1795700000000, StoreMailFunction1795800000000 };
