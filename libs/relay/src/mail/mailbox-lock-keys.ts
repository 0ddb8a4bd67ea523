/**
 * The advisory-lock keys of these mailboxes, distinct and sorted: two 32-bit FNV-1a hashes (two
 * offset bases) of each address's UTF-8 bytes joined into one signed 64-bit integer, in decimal
 * (safe to put in a statement). Not a security hash: two mailboxes sharing a key only serialise
 * their stores.
 */
export function mailboxLockKeys(recipients: readonly string[]): string[] {
  const keys = new Set<bigint>();
  for (const recipient of new Set(recipients)) {
    let h1 = 0x811c9dc5;
    let h2 = 0x050c5d1f;
    for (const byte of Buffer.from(recipient, 'utf8')) {
      h1 = Math.imul(h1 ^ byte, 0x01000193);
      h2 = Math.imul(h2 ^ byte, 0x01000193);
    }
    keys.add(BigInt.asIntN(64, (BigInt(h1 >>> 0) << 32n) | BigInt(h2 >>> 0)));
  }
  return [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
}
