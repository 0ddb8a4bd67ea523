/**
 * Loads Project Wycheproof vector files (C2SP/wycheproof, testvectors_v1) from the shared folder
 * beside the repository: `<repo>/../shared/vectors/wycheproof/`, where CI puts it next to a fresh
 * clone. A missing folder fails the suite loudly rather than letting it pass with nothing run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** libs/crypto/test -> libs/crypto -> libs -> <repo> -> <repo>/.. */
export const WYCHEPROOF_DIR = fileURLToPath(
  new URL('../../../../shared/vectors/wycheproof/', import.meta.url),
);

export type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

export interface WycheproofTest {
  readonly tcId: number;
  readonly comment?: string;
  readonly flags: readonly string[];
  readonly result: WycheproofResult;
}

export interface WycheproofGroup<T extends WycheproofTest> {
  readonly type: string;
  readonly tests: readonly T[];
}

export interface WycheproofFile<G> {
  readonly algorithm: string;
  readonly numberOfTests: number;
  readonly testGroups: readonly G[];
}

/** Reads `<WYCHEPROOF_DIR>/<name>`; throws with the path and the reason when it cannot. */
export function loadWycheproof<G>(name: string): WycheproofFile<G> {
  if (!existsSync(WYCHEPROOF_DIR)) {
    throw new Error(
      `Wycheproof vectors not found: expected the folder ${WYCHEPROOF_DIR} ` +
        '(shared/vectors/wycheproof beside the repository clone, as CI lays it out). ' +
        'Put the shared folder next to the repository and run again.',
    );
  }
  const path = `${WYCHEPROOF_DIR}${name}`;
  if (!existsSync(path)) throw new Error(`Wycheproof vector file missing: ${path}`);
  return JSON.parse(readFileSync(path, 'utf8')) as WycheproofFile<G>;
}

/** How many vectors of each result a file ran. */
export class VectorCount {
  valid = 0;
  invalid = 0;
  acceptable = 0;

  constructor(readonly file: string) {}

  add(result: WycheproofResult): void {
    this[result]++;
  }

  get total(): number {
    return this.valid + this.invalid + this.acceptable;
  }

  toString(): string {
    return `${this.file}: ${this.total} vectors run (valid ${this.valid}, invalid ${this.invalid}, acceptable ${this.acceptable})`;
  }
}

/** "tcId 12 (comment)" for failure lists: ids and comments only, never vector bytes. */
export function describeTest(t: WycheproofTest): string {
  return t.comment ? `tcId ${t.tcId} (${t.comment})` : `tcId ${t.tcId}`;
}
