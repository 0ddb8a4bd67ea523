/**
 * GET /relay.json: the relay's public identity, so the bundled web demo (served by this app) can
 * pin it. Public information only. A real deployment ships the key inside its client build
 * instead: fetching it from the relay you are about to authenticate is trust on first use.
 */
import { Controller, Get, Inject } from '@nestjs/common';
import { toHex, type IdentityKeyPair } from '@usm/crypto';

export const RELAY_IDENTITY = Symbol('RELAY_IDENTITY');

export interface RelayInfo {
  readonly publicKey: string;
  readonly fingerprint: string;
}

@Controller()
export class RelayInfoController {
  constructor(@Inject(RELAY_IDENTITY) private readonly identity: IdentityKeyPair) {}

  @Get('relay.json')
  info(): RelayInfo {
    return {
      publicKey: toHex(this.identity.publicKey.bytes),
      fingerprint: this.identity.publicKey.fingerprint(),
    };
  }
}
