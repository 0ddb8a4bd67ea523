import { inspect } from 'node:util';
import {
  X25519PublicKey,
  bytesEqual,
  generateIdentityKeyPair,
  generateX25519KeyPair,
  sign,
  toHex,
} from '@usm/crypto';
import { ProtocolErrorCode } from '../errors.js';
import { HandshakeClockSkewError } from './handshake-errors.js';
import { decodeHandshakeInit, encodeHandshakeInit } from './handshake-messages.js';
import {
  MINUTE,
  type World,
  expectProtocolError,
  handshake,
  impostorResponse,
  lowOrderKeys,
  scriptedComplete,
  scriptedInit,
  signedInit,
  world,
} from './handshake-kit.test.js';
import { InMemoryReplayStore } from './replay-store.js';

const Code = ProtocolErrorCode;
let w: World;

beforeEach(async () => {
  w = await world();
});

describe('client <-> relay handshake: happy path', () => {
  it('both sides agree on the session id, the traffic keys and each other identity', async () => {
    const { clientResult: c, relayResult: r } = await handshake(w.newClient(), w.newRelay());

    expect(c.peerIdentity.equals(w.relay.publicKey)).toBe(true);
    expect(r.peerIdentity.equals(w.client.publicKey)).toBe(true);
    expect(toHex(c.sessionId)).toBe(toHex(r.sessionId));
    expect(c.sessionId.length).toBe(32);
    expect(bytesEqual(c.trafficKeys.send, r.trafficKeys.receive)).toBe(true);
    expect(bytesEqual(c.trafficKeys.receive, r.trafficKeys.send)).toBe(true);
    expect(bytesEqual(c.trafficKeys.send, c.trafficKeys.receive)).toBe(false);
    expect(c.relayTimeMs).toBe(w.clock.now());
    expect(r.clientTimeMs).toBe(w.clock.now());
  });

  it('derives fresh keys for every handshake', async () => {
    const a = await handshake(w.newClient(), w.newRelay());
    const b = await handshake(w.newClient(), w.newRelay());
    expect(toHex(a.clientResult.sessionId)).not.toBe(toHex(b.clientResult.sessionId));
    expect(bytesEqual(a.clientResult.trafficKeys.send, b.clientResult.trafficKeys.send)).toBe(false);
  });

  it('sends the sizes of the message layouts', async () => {
    const { init, response, complete } = await handshake(w.newClient(), w.newRelay());
    expect([init.length, response.length, complete.length]).toEqual([174, 190, 98]);
  });

  it('keeps the relay identity out of the clear: only sealed in message 2', async () => {
    const { init, response, complete } = await handshake(w.newClient(), w.newRelay());
    const relayKey = toHex(w.relay.publicKey.bytes);
    for (const message of [init, response, complete]) expect(toHex(message)).not.toContain(relayKey);
  });

  it('never prints a traffic key', async () => {
    const { clientResult } = await handshake(w.newClient(), w.newRelay());
    const keys = clientResult.trafficKeys;
    const shown = `${inspect(keys)} ${JSON.stringify({ keys })} ${String(keys)}`;
    expect(shown).not.toContain(toHex(keys.send));
    expect(shown).not.toContain(toHex(keys.receive));
    expect(inspect(keys)).toBe(`TrafficKeys(session ${toHex(clientResult.sessionId.subarray(0, 8))})`);
  });

  it('wipes traffic keys on request', async () => {
    const { clientResult } = await handshake(w.newClient(), w.newRelay());
    clientResult.trafficKeys.wipe();
    expect(clientResult.trafficKeys.send.every((b) => b === 0)).toBe(true);
    expect(clientResult.trafficKeys.receive.every((b) => b === 0)).toBe(true);
  });
});

describe('relay authentication', () => {
  it('refuses a relay whose identity is not the pinned one (IDENTITY_MISMATCH)', async () => {
    const client = w.newClient({ pinned: generateIdentityKeyPair() });
    const response = await w.newRelay().receiveInit(client.start());
    const err = await expectProtocolError(() => client.receiveResponse(response), Code.IdentityMismatch);
    expect(err.message).toContain(w.relay.publicKey.fingerprint());
  });

  it('refuses a man in the middle who swaps the relay ephemeral (BAD_MAC: the sealed material no longer opens)', async () => {
    const client = w.newClient();
    const response = await w.newRelay().receiveInit(client.start());
    const swapped = response.slice();
    swapped.set(generateX25519KeyPair().publicKey.bytes, 4); // raw key bytes of the relay ephemeral
    await expectProtocolError(() => client.receiveResponse(swapped), Code.BadMac);
  });

  it('refuses a MITM with its own ephemeral that re-seals a real relay signature (BAD_SIGNATURE)', async () => {
    // The attacker runs its own handshake with the relay to learn a genuine relay signature...
    const { ephemeral, init: attackerInit } = scriptedInit(generateIdentityKeyPair(), w.clock.now());
    const attackerResponse = await w.newRelay().receiveInit(attackerInit);
    const { relaySignature } = await scriptedComplete(
      attackerInit,
      ephemeral,
      attackerResponse,
      () => new Uint8Array(64),
    );
    // ...then answers the victim with its own ephemeral, sealing that signature correctly under
    // its DH with the victim. The signature covers the attacker's transcript, not the victim's.
    const victim = w.newClient();
    const init = victim.start();
    const forged = await impostorResponse(init, {
      ephemeral: generateX25519KeyPair(),
      claimedIdentity: w.relay.publicKey,
      signature: relaySignature,
      timestampMs: w.clock.now(),
    });
    await expectProtocolError(() => victim.receiveResponse(forged), Code.BadSignature);
  });

  it('refuses an impostor relay that signs with its own key (IDENTITY_MISMATCH before any signature check)', async () => {
    const impostor = generateIdentityKeyPair();
    const client = w.newClient();
    const init = client.start();
    const forged = await impostorResponse(init, {
      ephemeral: generateX25519KeyPair(),
      claimedIdentity: impostor.publicKey,
      signature: new Uint8Array(64),
      timestampMs: w.clock.now(),
    });
    await expectProtocolError(() => client.receiveResponse(forged), Code.IdentityMismatch);
  });
});

describe('client authentication', () => {
  it('refuses a MITM who swaps the client ephemeral in Init (BAD_SIGNATURE)', async () => {
    const init = w.newClient().start();
    const swapped = init.slice();
    swapped.set(generateX25519KeyPair().publicKey.bytes, 4);
    await expectProtocolError(() => w.newRelay().receiveInit(swapped), Code.BadSignature);
  });

  it('refuses an Init that claims another client identity (BAD_SIGNATURE)', async () => {
    const init = decodeHandshakeInit(w.newClient().start());
    const claimed = encodeHandshakeInit({ ...init, identity: generateIdentityKeyPair().publicKey });
    await expectProtocolError(() => w.newRelay().receiveInit(claimed), Code.BadSignature);
  });

  it('refuses a Complete whose signature is not by the Init identity, even with a valid MAC (BAD_SIGNATURE)', async () => {
    const relay = w.newRelay();
    const { ephemeral, init } = scriptedInit(w.client, w.clock.now());
    const response = await relay.receiveInit(init);
    const other = generateIdentityKeyPair();
    const { complete } = await scriptedComplete(init, ephemeral, response, (content) => sign(other, content));
    await expectProtocolError(() => relay.receiveComplete(complete), Code.BadSignature);
  });

  it('accepts the scripted client when it signs correctly (the kit matches the implementation)', async () => {
    const relay = w.newRelay();
    const { ephemeral, init } = scriptedInit(w.client, w.clock.now());
    const response = await relay.receiveInit(init);
    const { complete } = await scriptedComplete(init, ephemeral, response, (content) =>
      sign(w.client, content),
    );
    const result = await relay.receiveComplete(complete);
    expect(result.peerIdentity.equals(w.client.publicKey)).toBe(true);
  });

  it('refuses a Complete replayed into another session of the same client (BAD_MAC)', async () => {
    const { complete } = await handshake(w.newClient(), w.newRelay());
    // The same client opens a second session, possibly on another node sharing the store.
    const secondRelay = w.newRelay();
    await secondRelay.receiveInit(w.newClient().start());
    await expectProtocolError(() => secondRelay.receiveComplete(complete), Code.BadMac);
  });

  it('refuses a Complete with no handshake pending, or after the handshake ended (UNEXPECTED_MESSAGE)', async () => {
    const relay = w.newRelay();
    const { complete } = await handshake(w.newClient(), relay);
    await expectProtocolError(() => relay.receiveComplete(complete), Code.UnexpectedMessage);
    await expectProtocolError(() => w.newRelay().receiveComplete(complete), Code.UnexpectedMessage);
  });
});

describe('anti-replay', () => {
  it('refuses a replayed Init on the same node (REPLAY)', async () => {
    const init = w.newClient().start();
    await w.newRelay().receiveInit(init);
    await expectProtocolError(() => w.newRelay().receiveInit(init), Code.Replay);
  });

  it('refuses a replayed Init on another node sharing the replay store (REPLAY)', async () => {
    const sharedStore = new InMemoryReplayStore({ clock: w.clock });
    const nodeA = () => w.newRelay({ replayStore: sharedStore });
    const nodeB = () => w.newRelay({ replayStore: sharedStore });
    const init = w.newClient().start();
    await nodeA().receiveInit(init);
    await expectProtocolError(() => nodeB().receiveInit(init), Code.Replay);
  });

  it('never stores the nonce of a refused Init', async () => {
    const init = w.newClient().start();
    w.clock.advance(6 * MINUTE);
    await expectProtocolError(() => w.newRelay().receiveInit(init), Code.ClockSkew);
    expect(w.store.size).toBe(0);
  });

  it('refuses a replay for as long as its timestamp passes the skew check', async () => {
    const client = w.newClient();
    w.clock.advance(5 * MINUTE); // the client is 5 minutes behind: the Init's window ends now + 10 minutes
    const init = client.start();
    w.clock.advance(-5 * MINUTE);
    await w.newRelay().receiveInit(init);
    w.clock.advance(10 * MINUTE); // |timestamp - now| = 5 minutes: still acceptable, still remembered
    await expectProtocolError(() => w.newRelay().receiveInit(init), Code.Replay);
    w.clock.advance(1); // the timestamp leaves the window: refused for skew, the nonce may be forgotten
    await expectProtocolError(() => w.newRelay().receiveInit(init), Code.ClockSkew);
  });

  it('keys the store on a hash of identity and nonce, never on the nonce itself', async () => {
    const seen: Uint8Array[] = [];
    const store = {
      remember: async (key: Uint8Array) => {
        seen.push(key);
        return true;
      },
    };
    const init = w.newClient().start();
    await w.newRelay({ replayStore: store }).receiveInit(init);
    const { nonce } = decodeHandshakeInit(init);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.length).toBe(32);
    expect(toHex(seen[0] as Uint8Array)).not.toBe(toHex(nonce));
  });

  it('does not let one client spend another client nonce', async () => {
    const victimInit = decodeHandshakeInit(w.newClient().start());
    const attacker = generateIdentityKeyPair();
    const attackerInit = signedInit(
      attacker,
      generateX25519KeyPair().publicKey,
      w.clock.now(),
      victimInit.nonce,
    );
    await w.newRelay().receiveInit(attackerInit);
    await expect(w.newRelay().receiveInit(encodeHandshakeInit(victimInit))).resolves.toHaveLength(190);
  });
});

describe('clock skew', () => {
  const initAt = (offsetMs: number) => {
    const clock = { now: () => w.clock.now() + offsetMs };
    return w.newClient({ clock }).start();
  };

  it.each([
    ['+4 minutes', 4 * MINUTE],
    ['-4 minutes', -4 * MINUTE],
    ['+5 minutes exactly', 5 * MINUTE],
    ['-5 minutes exactly', -5 * MINUTE],
  ])('accepts a client clock %s off', async (_, offset) => {
    await expect(w.newRelay().receiveInit(initAt(offset))).resolves.toHaveLength(190);
  });

  it.each([
    ['+6 minutes', 6 * MINUTE],
    ['-6 minutes', -6 * MINUTE],
    ['+5 minutes + 1 ms', 5 * MINUTE + 1],
    ['-5 minutes - 1 ms', -5 * MINUTE - 1],
  ])('refuses a client clock %s off with CLOCK_SKEW carrying the relay time', async (_, offset) => {
    const err = await expectProtocolError(() => w.newRelay().receiveInit(initAt(offset)), Code.ClockSkew);
    expect(err).toBeInstanceOf(HandshakeClockSkewError);
    const skew = err as HandshakeClockSkewError;
    expect(skew.serverTimeMs).toBe(w.clock.now());
    expect(skew.clientTimeMs).toBe(w.clock.now() + offset);
    expect(skew.skewWindowMs).toBe(5 * MINUTE);
    expect(skew.message).toContain(String(w.clock.now()));
  });

  it('honours a configured window', async () => {
    const relay = () => w.newRelay({ skewWindowMs: MINUTE });
    await expect(relay().receiveInit(initAt(MINUTE))).resolves.toHaveLength(190);
    await expectProtocolError(() => relay().receiveInit(initAt(MINUTE + 1)), Code.ClockSkew);
  });

  it('refuses bad options at construction', () => {
    expect(() => w.newRelay({ skewWindowMs: 0 })).toThrow('skewWindowMs must be a positive integer');
    expect(() => w.newRelay({ replayRetentionMs: Number.NaN })).toThrow(
      'replayRetentionMs must be a positive',
    );
  });
});

describe('low-order X25519 ephemerals (all-zero DH output)', () => {
  it.each(lowOrderKeys().map((k) => [toHex(k).slice(0, 8), k] as const))(
    'the relay refuses a signed Init with ephemeral %s… (INVALID_KEY)',
    async (_, point) => {
      const init = signedInit(w.client, new X25519PublicKey(point), w.clock.now());
      await expectProtocolError(() => w.newRelay().receiveInit(init), Code.InvalidKey);
      expect(w.store.size).toBe(0);
    },
  );

  it.each(lowOrderKeys().map((k) => [toHex(k).slice(0, 8), k] as const))(
    'the client refuses a Response with ephemeral %s… (INVALID_KEY)',
    async (_, point) => {
      const client = w.newClient();
      const init = client.start();
      const forged = await impostorResponse(init, {
        ephemeral: point,
        claimedIdentity: w.relay.publicKey,
        signature: new Uint8Array(64),
        timestampMs: w.clock.now(),
      });
      await expectProtocolError(() => client.receiveResponse(forged), Code.InvalidKey);
    },
  );
});

describe('message order', () => {
  it('the client refuses a Response before start(), and a second start()', async () => {
    const response = await w.newRelay().receiveInit(w.newClient().start());
    await expectProtocolError(() => w.newClient().receiveResponse(response), Code.UnexpectedMessage);
    const client = w.newClient();
    client.start();
    await expectProtocolError(() => client.start(), Code.UnexpectedMessage);
  });

  it('the client refuses a second Response after completing', async () => {
    const client = w.newClient();
    const { response } = await handshake(client, w.newRelay());
    await expectProtocolError(() => client.receiveResponse(response), Code.UnexpectedMessage);
  });

  it('the relay refuses a second Init on the same handshake', async () => {
    const relay = w.newRelay();
    await relay.receiveInit(w.newClient().start());
    await expectProtocolError(() => relay.receiveInit(w.newClient().start()), Code.UnexpectedMessage);
  });

  it('each side refuses a message of another step (UNEXPECTED_MESSAGE)', async () => {
    const client = w.newClient();
    const relay = w.newRelay();
    const init = client.start();
    const response = await relay.receiveInit(init);
    // Bytes of message 1 where message 3 is due, and of message 3 where message 2 is due.
    await expectProtocolError(() => relay.receiveComplete(init), Code.UnexpectedMessage);
    await expectProtocolError(() => w.newRelay().receiveInit(response), Code.UnexpectedMessage);
    await expectProtocolError(() => client.receiveResponse(init), Code.UnexpectedMessage);
  });

  it('a failed handshake stays failed', async () => {
    const client = w.newClient({ pinned: generateIdentityKeyPair() });
    const relay = w.newRelay();
    const response = await relay.receiveInit(client.start());
    await expectProtocolError(() => client.receiveResponse(response), Code.IdentityMismatch);
    await expectProtocolError(() => client.receiveResponse(response), Code.UnexpectedMessage);
    await expectProtocolError(() => relay.receiveComplete(new Uint8Array(98)), Code.UnsupportedVersion);
    await expectProtocolError(() => relay.receiveComplete(new Uint8Array(98)), Code.UnexpectedMessage);
  });

  it('never lets two concurrent calls both proceed', async () => {
    const relay = w.newRelay();
    const first = relay.receiveInit(w.newClient().start());
    await expectProtocolError(() => relay.receiveInit(w.newClient().start()), Code.UnexpectedMessage);
    await expect(first).resolves.toHaveLength(190);
  });
});
