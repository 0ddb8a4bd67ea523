/**
 * Every byte of every handshake message, flipped, and every message truncated or extended: the
 * receiving side refuses with a ProtocolError of the exact code the field's position implies
 * (never another error type, never success).
 */
import fc from 'fast-check';
import { ProtocolErrorCode } from '../errors.js';
import { COMPLETE_BYTES, INIT_BYTES, RESPONSE_BYTES } from './handshake-messages.js';
import { type World, expectProtocolError, flip, handshake, world } from './handshake-kit.test.js';

const Code = ProtocolErrorCode;
let w: World;

beforeAll(async () => {
  w = await world();
});

/** A fresh client's Init, fed to a fresh relay. */
const deliverInit = (mutate: (init: Uint8Array) => Uint8Array) => {
  const init = mutate(w.newClient().start());
  return () => w.newRelay().receiveInit(init);
};

/** A fresh relay's Response, fed to the client that is waiting for it. */
const deliverResponse = async (mutate: (response: Uint8Array) => Uint8Array) => {
  const client = w.newClient();
  const response = mutate(await w.newRelay().receiveInit(client.start()));
  return () => client.receiveResponse(response);
};

/** A client's Complete, fed to the relay that is waiting for it. */
const deliverComplete = async (mutate: (complete: Uint8Array) => Uint8Array) => {
  const client = w.newClient();
  const relay = w.newRelay();
  const { complete } = await client.receiveResponse(await relay.receiveInit(client.start()));
  const mutated = mutate(complete);
  return () => relay.receiveComplete(mutated);
};

// Byte i XOR 0x01: the exact code, from the layout in handshake-messages.ts.
function initFlipCode(i: number): ProtocolErrorCode {
  if (i === 0) return Code.UnsupportedVersion; // version 1 -> 0
  if (i === 1) return Code.Malformed; // type 1 -> 0: no such message
  if (i === 2 || i === 36) return Code.Malformed; // key encoding version 1 -> 0
  if (i === 3 || i === 37) return Code.InvalidKey; // key type X25519 -> X-Wing, Ed25519 -> none
  if (i === 70) return Code.Malformed; // time + 2^56: beyond 2^53 - 1
  if (i >= 71 && i <= 74) return Code.ClockSkew; // time +- 2^48 .. 2^24 ms (4.7 hours and more)
  return Code.BadSignature; // ephemeral, identity, time +- 65 s or less, nonce, signature
}

function responseFlipCode(i: number): ProtocolErrorCode {
  if (i === 0) return Code.UnsupportedVersion;
  if (i === 1) return Code.UnexpectedMessage; // type 2 -> 3: a Complete
  if (i === 2) return Code.Malformed;
  if (i === 3) return Code.InvalidKey;
  if (i === 36) return Code.Malformed; // time + 2^56
  return Code.BadMac; // ephemeral (other DH), time (other transcript), sealed material, MAC
}

function completeFlipCode(i: number): ProtocolErrorCode {
  if (i === 0) return Code.UnsupportedVersion;
  if (i === 1) return Code.UnexpectedMessage; // type 3 -> 2: a Response
  return Code.BadMac; // the Finished MAC covers the signature
}

// Any non-zero XOR mask: the codes the field's position allows.
function initMaskCodes(i: number): ProtocolErrorCode[] {
  if (i === 0) return [Code.UnsupportedVersion];
  if (i === 1) return [Code.Malformed, Code.UnexpectedMessage];
  if (i === 2 || i === 36) return [Code.Malformed];
  if (i === 3 || i === 37) return [Code.InvalidKey];
  if (i >= 70 && i <= 77) return [Code.Malformed, Code.ClockSkew, Code.BadSignature];
  return [Code.BadSignature];
}

function responseMaskCodes(i: number): ProtocolErrorCode[] {
  if (i === 0) return [Code.UnsupportedVersion];
  if (i === 1) return [Code.Malformed, Code.UnexpectedMessage];
  if (i === 2) return [Code.Malformed];
  if (i === 3) return [Code.InvalidKey];
  if (i >= 4 && i <= 35) return [Code.BadMac, Code.InvalidKey]; // a low-order result is INVALID_KEY
  if (i >= 36 && i <= 43) return [Code.Malformed, Code.BadMac];
  return [Code.BadMac];
}

function completeMaskCodes(i: number): ProtocolErrorCode[] {
  if (i === 0) return [Code.UnsupportedVersion];
  if (i === 1) return [Code.Malformed, Code.UnexpectedMessage];
  return [Code.BadMac];
}

const positions = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('the untouched messages go through (control for the cases below)', () => {
  it('completes', async () => {
    await expect(handshake(w.newClient(), w.newRelay())).resolves.toBeDefined();
    await expect(deliverInit((m) => m)()).resolves.toHaveLength(RESPONSE_BYTES);
    await expect((await deliverResponse((m) => m))()).resolves.toBeDefined();
    await expect((await deliverComplete((m) => m))()).resolves.toBeDefined();
  });
});

describe('every byte flipped (XOR 0x01) is refused with the code of its field', () => {
  it.each(positions(INIT_BYTES))('Init byte %i', async (i) => {
    await expectProtocolError(
      deliverInit((m) => flip(m, i)),
      initFlipCode(i),
    );
  });

  it.each(positions(RESPONSE_BYTES))('Response byte %i', async (i) => {
    await expectProtocolError(await deliverResponse((m) => flip(m, i)), responseFlipCode(i));
  });

  it.each(positions(COMPLETE_BYTES))('Complete byte %i', async (i) => {
    await expectProtocolError(await deliverComplete((m) => flip(m, i)), completeFlipCode(i));
  });
});

describe('any byte XOR any mask (fast-check) is refused with a code its field allows', () => {
  const flips = (length: number) =>
    fc.tuple(fc.integer({ min: 0, max: length - 1 }), fc.integer({ min: 1, max: 255 }));

  it('Init', async () => {
    await fc.assert(
      fc.asyncProperty(flips(INIT_BYTES), async ([i, mask]) => {
        await expectProtocolError(
          deliverInit((m) => flip(m, i, mask)),
          initMaskCodes(i),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('Response', async () => {
    await fc.assert(
      fc.asyncProperty(flips(RESPONSE_BYTES), async ([i, mask]) => {
        await expectProtocolError(await deliverResponse((m) => flip(m, i, mask)), responseMaskCodes(i));
      }),
      { numRuns: 300 },
    );
  });

  it('Complete', async () => {
    await fc.assert(
      fc.asyncProperty(flips(COMPLETE_BYTES), async ([i, mask]) => {
        await expectProtocolError(await deliverComplete((m) => flip(m, i, mask)), completeMaskCodes(i));
      }),
      { numRuns: 300 },
    );
  });
});

describe('every truncation and extension is MALFORMED', () => {
  const cut = (n: number) => (m: Uint8Array) => m.slice(0, n);
  const extend = (n: number) => (m: Uint8Array) => {
    const out = new Uint8Array(m.length + n);
    out.set(m);
    return out;
  };
  const extensions = [1, 2, 31, 32, 64, 1000];

  it.each(positions(INIT_BYTES))('Init cut to %i bytes', async (n) => {
    await expectProtocolError(deliverInit(cut(n)), Code.Malformed);
  });
  it.each(extensions)('Init extended by %i bytes', async (n) => {
    await expectProtocolError(deliverInit(extend(n)), Code.Malformed);
  });

  it.each(positions(RESPONSE_BYTES))('Response cut to %i bytes', async (n) => {
    await expectProtocolError(await deliverResponse(cut(n)), Code.Malformed);
  });
  it.each(extensions)('Response extended by %i bytes', async (n) => {
    await expectProtocolError(await deliverResponse(extend(n)), Code.Malformed);
  });

  it.each(positions(COMPLETE_BYTES))('Complete cut to %i bytes', async (n) => {
    await expectProtocolError(await deliverComplete(cut(n)), Code.Malformed);
  });
  it.each(extensions)('Complete extended by %i bytes', async (n) => {
    await expectProtocolError(await deliverComplete(extend(n)), Code.Malformed);
  });
});
