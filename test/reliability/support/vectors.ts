/**
 * The Wycheproof X25519 vectors whose public key is of low order (flags LowOrderPublic or
 * ZeroSharedSecret: every DH with them gives the all-zero output RFC 7748 §6.1 refuses), read
 * from the shared vector folder beside the repository through libs/crypto's loader.
 */
import { fromHex } from '@usm/crypto';
import {
  type WycheproofGroup,
  type WycheproofTest,
  loadWycheproof,
} from '../../../libs/crypto/test/wycheproof.js';

interface X25519Test extends WycheproofTest {
  readonly public: string;
  readonly shared: string;
}

export interface LowOrderVector {
  readonly tcId: number;
  readonly publicKey: Uint8Array;
}

const LOW_ORDER_FLAGS = ['LowOrderPublic', 'ZeroSharedSecret'];

/** The 31 vectors (14 distinct points: several vectors share a point with another private key). */
export function lowOrderX25519Vectors(): LowOrderVector[] {
  const file = loadWycheproof<WycheproofGroup<X25519Test>>('x25519_test.json');
  return file.testGroups
    .flatMap((g) => g.tests)
    .filter((t) => t.flags.some((f) => LOW_ORDER_FLAGS.includes(f)))
    .map((t) => ({ tcId: t.tcId, publicKey: fromHex(t.public) }));
}
