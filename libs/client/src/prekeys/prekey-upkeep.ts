/**
 * Keeps this device's prekeys published and fresh, and is the one writer of the stored prekey
 * store (`prekeys`):
 *  - on each connect (`sync`): `prekeys:count`; rotate the signed and last-resort KEM prekeys when
 *    older than `signedPrekeyMaxAgeMs` (PQXDH §3.2; the store keeps the previous ones for mail in
 *    flight); publish them when rotated or when the relay has none; top up one-time prekeys
 *    below LOW_PREKEY_THRESHOLD;
 *  - on `prekeys:low` (`topUp`): generate a batch, persist it, then publish it (one top-up at a
 *    time);
 *  - when a received message used a one-time prekey (`writeWith`): the prekey store goes into the
 *    receive path's batch.
 * Every write of the pickle runs in one queue, so a later write never holds an older pickle.
 */
import {
  LOW_PREKEY_THRESHOLD,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  type PrekeyStore,
  publishRequestOf,
  chunk,
} from '@usm/protocol';
import { PREKEYS_KEY } from '../client-records.js';
import { MAX_BINARY_ATTACHMENTS, type RelayRequests } from '../connection.js';
import { SerialQueue } from '../locks.js';
import { type Runtime, reportUnlessOffline } from '../runtime.js';
import type { ClientStore, StoreEntry } from '../storage/client-store.js';

export interface PrekeyUpkeepOptions extends Runtime {
  readonly prekeys: PrekeyStore;
  readonly store: ClientStore;
  readonly connection: RelayRequests;
  /** One-time prekeys generated per top-up (1..MAX_ONE_TIME_PREKEYS_PER_PUBLISH). */
  readonly oneTimePrekeyBatch: number;
  /** Signed and last-resort KEM prekeys older than this are replaced on connect. */
  readonly signedPrekeyMaxAgeMs: number;
}

export class PrekeyUpkeep {
  readonly #o: PrekeyUpkeepOptions;
  readonly #writes = new SerialQueue();
  #toppingUp: Promise<void> | undefined;

  constructor(options: PrekeyUpkeepOptions) {
    this.#o = options;
  }

  /** After each handshake: rotate, publish and top up as the relay's count requires. */
  async sync(): Promise<void> {
    const { prekeys, connection, clock } = this.#o;
    const count = await connection.request('prekeys:count', {});
    let rotated = false;
    if (clock.now() - prekeys.signedPrekeyCreatedAt > this.#o.signedPrekeyMaxAgeMs) {
      // PQXDH §3.2 (Publishing keys): new signed and last-resort KEM prekeys "at some interval
      // (e.g. once a week or once a month)"; the store keeps the previous ones for mail in flight.
      await this.#writes.run(async () => {
        prekeys.rotateSignedPrekey();
        prekeys.rotateLastResortKemPrekey();
        await this.#o.store.write({ put: [[PREKEYS_KEY, await prekeys.pickle()]] });
      });
      rotated = true;
    }
    if (rotated || !count.hasSignedPrekey || !count.hasKemPrekey) {
      await connection.request(
        'prekeys:publish',
        publishRequestOf({
          signedPrekey: prekeys.signedPrekey,
          lastResortKemPrekey: prekeys.lastResortKemPrekey,
        }),
      );
    }
    if (count.oneTimePrekeys < LOW_PREKEY_THRESHOLD) await this.topUp();
  }

  /** Generates, persists, then publishes a batch of one-time prekeys (one top-up at a time; never throws). */
  topUp(): Promise<void> {
    this.#toppingUp ??= this.#writes
      .run(async () => {
        const { prekeys } = this.#o;
        const fresh = prekeys.generateOneTimePrekeys(this.#o.oneTimePrekeyBatch);
        await this.#o.store.write({ put: [[PREKEYS_KEY, await prekeys.pickle()]] });
        const perPublish = Math.min(MAX_BINARY_ATTACHMENTS, MAX_ONE_TIME_PREKEYS_PER_PUBLISH);
        for (const oneTimePrekeys of chunk(fresh, { maxCount: perPublish })) {
          await this.#o.connection.request('prekeys:publish', publishRequestOf({ oneTimePrekeys }));
        }
      })
      .catch((err: unknown) => reportUnlessOffline(this.#o, err))
      .finally(() => {
        this.#toppingUp = undefined;
      });
    return this.#toppingUp;
  }

  /** Writes `put` and the prekey store in one batch (a received message used a one-time prekey). */
  writeWith(put: readonly StoreEntry[]): Promise<void> {
    return this.#writes.run(async () => {
      await this.#o.store.write({ put: [...put, [PREKEYS_KEY, await this.#o.prekeys.pickle()]] });
    });
  }
}
