import { describe, expect, it } from '@jest/globals';
import { ClientError, ClientErrorCode } from '../errors.js';
import { guardStore } from './guarded-store.js';
import { MemoryStore } from './memory-store.js';

describe('guardStore', () => {
  it('passes calls through while open, refuses every call once closed, and never closes the store', async () => {
    const inner = new MemoryStore();
    let closed = false;
    const store = guardStore(inner, () => closed);
    await store.write({ put: [['k', Uint8Array.of(1)]] });
    expect(await store.get('k')).toEqual(Uint8Array.of(1));
    await store.close();
    expect(await inner.get('k')).toEqual(Uint8Array.of(1));
    closed = true;
    for (const call of [() => store.get('k'), () => store.list(''), () => store.write({})]) {
      const err = await call().catch((e: unknown) => e);
      expect(ClientError.is(err, ClientErrorCode.StoreClosed)).toBe(true);
    }
  });
});
