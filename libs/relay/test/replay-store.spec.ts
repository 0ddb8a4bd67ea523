import { runMigrations, usePostgres } from '../../../test/support/postgres.js';
import { RelayDatabase } from '../src/database/relay-database.js';
import { RelayError, RelayErrorCode } from '../src/relay.errors.js';
import { RELAY_MESSAGES as M } from '../src/relay.messages.js';
import { PostgresReplayStore } from '../src/handshake/replay-store.service.js';
import { ManualClock } from './fixtures.js';
import { randomBytes } from 'node:crypto';

describe('PostgresReplayStore', () => {
  const pg = usePostgres();
  const clock = new ManualClock();
  let nodeA: PostgresReplayStore;
  let nodeB: PostgresReplayStore;

  beforeAll(async () => {
    const [a, b] = [await pg.dataSource(), await pg.dataSource()];
    await runMigrations(a);
    nodeA = new PostgresReplayStore(new RelayDatabase(a), clock);
    nodeB = new PostgresReplayStore(new RelayDatabase(b), clock);
  });

  const nonce = () => new Uint8Array(randomBytes(32));

  it('remembers a nonce once, across nodes', async () => {
    const n = nonce();
    expect(await nodeA.remember(n, clock.now() + 60_000)).toBe(true);
    expect(await nodeA.remember(n, clock.now() + 60_000)).toBe(false);
    expect(await nodeB.remember(n, clock.now() + 60_000)).toBe(false);
    expect(await nodeB.remember(nonce(), clock.now() + 60_000)).toBe(true);
  });

  it('of many concurrent calls with one nonce on two nodes, exactly one is new', async () => {
    const n = nonce();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? nodeA : nodeB).remember(n, clock.now() + 60_000)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('forgets a nonce after its expiry (injected clock), even before cleanup removed it', async () => {
    const n = nonce();
    expect(await nodeA.remember(n, clock.now() + 1_000)).toBe(true);
    clock.advance(999);
    expect(await nodeA.remember(n, clock.now() + 1_000)).toBe(false);
    clock.advance(2);
    expect(await nodeB.remember(n, clock.now() + 1_000)).toBe(true);
    expect(await nodeA.remember(n, clock.now() + 1_000)).toBe(false);
  });

  it('refuses nonces that are too short or too long', async () => {
    await expect(nodeA.remember(new Uint8Array(8), clock.now())).rejects.toThrow(
      new RelayError(RelayErrorCode.InvalidInput, M.badNonce(8, 16, 64)),
    );
    const err = await nodeA.remember(new Uint8Array(65), clock.now()).catch((e: unknown) => e);
    expect(RelayError.is(err, RelayErrorCode.InvalidInput)).toBe(true);
  });
});
