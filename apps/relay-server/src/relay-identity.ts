/**
 * The relay's persistent Ed25519 identity: clients pin its public key, so it must survive
 * restarts. Created on first start, then loaded. The file holds the versioned secret-key encoding
 * of libs/crypto and is readable by its owner only (0600); keep it out of backups you would not
 * trust with the relay's identity. Only the public fingerprint is ever printed.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeIdentityKeyPair, generateIdentityKeyPair, ready, type IdentityKeyPair } from '@usm/crypto';

export interface LoadedIdentity {
  readonly identity: IdentityKeyPair;
  /** True when this start created the key. */
  readonly created: boolean;
  /** Things an operator should fix (e.g. the file is readable by others). */
  readonly warnings: string[];
}

export async function loadOrCreateRelayIdentity(file: string): Promise<LoadedIdentity> {
  await ready();
  if (existsSync(file)) {
    const mode = (await stat(file)).mode & 0o777;
    if ((mode & 0o022) !== 0) {
      throw new Error(`${file} is writable by others (mode ${mode.toString(8)}): run chmod 600 on it`);
    }
    // Container secrets are often mounted 0444; say so rather than refuse.
    const warnings =
      (mode & 0o044) !== 0 ? [`${file} is readable by others (mode ${mode.toString(8)}); chmod 600 it`] : [];
    try {
      return { identity: decodeIdentityKeyPair(await readFile(file)), created: false, warnings };
    } catch (err) {
      throw new Error(
        `${file} is not a relay identity key (${(err as Error).message}); move it away to create a new one`,
        { cause: err },
      );
    }
  }
  const identity = generateIdentityKeyPair();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, identity.secretKey.encode(), { mode: 0o600, flag: 'wx' });
  return { identity, created: true, warnings: [] };
}
