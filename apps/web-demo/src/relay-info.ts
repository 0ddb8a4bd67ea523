/**
 * The relay this page talks to, and the key it pins.
 *
 * The demo is served by the sample relay (apps/relay-server), which answers GET /relay.json with
 * its public identity key. Fetching the key from the relay the page is about to authenticate is
 * trust on first use: whoever serves the page could serve another key. A real app ships the relay's
 * key inside its build (a constant, or esbuild's `define`) and passes it as `relayIdentityKey`.
 */

export interface RelayInfo {
  /** The relay's socket.io URL: the page's own origin. */
  readonly url: string;
  /** Hex of the relay's 32-byte Ed25519 identity key, pinned by the client. */
  readonly publicKey: string;
  /** The relay's short public fingerprint, for display. */
  readonly fingerprint: string;
}

/** Reads /relay.json from the page's origin and checks its shape. */
export async function fetchRelayInfo(origin: string = location.origin): Promise<RelayInfo> {
  const response = await fetch(new URL('/relay.json', origin), { cache: 'no-store' });
  if (!response.ok) {
    throw new Error(
      `GET /relay.json answered ${response.status}: open this page from the sample relay (npm start)`,
    );
  }
  const body = (await response.json()) as { publicKey?: unknown; fingerprint?: unknown };
  if (typeof body.publicKey !== 'string' || !/^[0-9a-f]{64}$/i.test(body.publicKey)) {
    throw new Error('/relay.json holds no relay public key (expected 64 hex digits)');
  }
  const fingerprint = typeof body.fingerprint === 'string' ? body.fingerprint : '';
  return { url: origin, publicKey: body.publicKey.toLowerCase(), fingerprint };
}
