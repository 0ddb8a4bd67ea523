/**
 * Test kit: what a newer version of the app sends, a message of a payload kind this version does
 * not know, queued in a (closed) client's store the way `send` does it: the advanced session, the
 * next sequence number and the envelope in one outbox batch. The client sends it once opened.
 */
import {
  Session,
  asAddressString,
  encodeEnvelope,
  formatMessageId,
  generateMessageId,
  parseAddress,
  sealApplicationPayload,
  type MessageIdString,
} from '@usm/protocol';
import { decodeCounter, encodeCounter, sendSeqKey, sessionKey } from './client-records.js';
import { Outbox } from './outbox/outbox.js';
import type { ClientStore } from './storage/client-store.js';

export async function queueUnknownKind(
  store: ClientStore,
  peer: string,
  rawKind: number,
): Promise<{ id: MessageIdString; sentAt: number }> {
  const address = asAddressString(peer);
  const session = await Session.fromPickle((await store.get(sessionKey(address)))!);
  const sequence = decodeCounter((await store.get(sendSeqKey(address)))!);
  const sentAt = Date.now();
  const id = generateMessageId();
  const plaintext = sealApplicationPayload({
    kind: 'unknown',
    rawKind,
    sequence,
    sentAt,
    body: Uint8Array.of(1, 2, 3),
  });
  const ciphertext = await session.encrypt(plaintext, id);
  const outbox = await Outbox.open(store);
  await outbox.enqueue(
    {
      messageId: id,
      recipient: address,
      envelope: encodeEnvelope({ id, recipient: parseAddress(address), ciphertext }),
    },
    {
      put: [
        [sessionKey(address), await session.pickle()],
        [sendSeqKey(address), encodeCounter(sequence + 1)],
      ],
    },
  );
  return { id: formatMessageId(id), sentAt };
}
