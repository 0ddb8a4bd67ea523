/** fast-check arbitraries for the protocol's values, shared by the specs. */
import fc from 'fast-check';
import type { Address } from '../src/address/address.js';
import type { Envelope } from '../src/envelope/envelope.codec.js';
import { PayloadKind, type ApplicationPayload } from '../src/application/application-payload.codec.js';
import {
  MAX_DEVICE_ID,
  MAX_SEQUENCE,
  MESSAGE_ID_BYTES,
  MIN_ENVELOPE_CIPHERTEXT_BYTES,
} from '../src/limits.js';

export const messageId = fc.uint8Array({ minLength: MESSAGE_ID_BYTES, maxLength: MESSAGE_ID_BYTES });

export const deviceId = fc.oneof(
  fc.constantFrom(1, 2, MAX_DEVICE_ID),
  fc.integer({ min: 1, max: MAX_DEVICE_ID }),
);

export const address: fc.Arbitrary<Address> = fc.record({
  identityKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  deviceId,
});

/** Small ciphertexts keep the fuzz runs fast; the limits are tested separately. */
export const envelope: fc.Arbitrary<Envelope> = fc.record({
  id: messageId,
  recipient: address,
  ciphertext: fc.uint8Array({ minLength: MIN_ENVELOPE_CIPHERTEXT_BYTES, maxLength: 96 }),
});

const header = {
  sequence: fc.oneof(fc.constantFrom(0, MAX_SEQUENCE), fc.integer({ min: 0, max: MAX_SEQUENCE })),
  sentAt: fc.oneof(fc.constantFrom(0, Number.MAX_SAFE_INTEGER), fc.nat({ max: 4_102_444_800_000 })),
};

/** Well-formed strings of any code points (paired surrogates included, lone ones not). */
export const wellFormedText = fc.string({ unit: 'binary', maxLength: 40 });

export const applicationPayload: fc.Arbitrary<ApplicationPayload> = fc.oneof(
  fc.record({ kind: fc.constant(PayloadKind.Text as const), ...header, text: wellFormedText }),
  fc.record({
    kind: fc.constant(PayloadKind.Bytes as const),
    ...header,
    bytes: fc.uint8Array({ maxLength: 64 }),
  }),
  fc.record({
    kind: fc.constant(PayloadKind.DeliveryReceipt as const),
    ...header,
    messageIds: fc.array(messageId, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant(PayloadKind.SessionReset as const), ...header }),
);
