/**
 * Mail pushed to this node's sockets: `mail` events to a mailbox's sockets, each while push flow
 * control admits it (push/push-flow-control.ts), and `mail:sync` to sockets that must fetch what
 * was not pushed to them. The mail is stored before it is pushed and `fetch` returns it until
 * acked, so a push left out costs a fetch, never a message.
 */
import { Injectable } from '@nestjs/common';
import {
  type AddressString,
  MAX_FETCH_PAGE,
  MAX_FETCH_PAGE_BYTES,
  type MailItem,
  type MailSyncReason,
  chunk,
} from '@usm/protocol';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { PushFlowControl } from '../push/push-flow-control.js';
import { type RelaySocket, RelaySockets } from '../socket/relay-server.js';

/**
 * One recipient's mail as `mail` events its client accepts, in order: at most MAX_FETCH_PAGE
 * items and MAX_FETCH_PAGE_BYTES of envelopes each (a fetch page's bounds; one item always fits).
 */
export function mailEvents(items: readonly MailItem[]): MailItem[][] {
  return chunk(items, {
    maxCount: MAX_FETCH_PAGE,
    maxBytes: MAX_FETCH_PAGE_BYTES,
    bytesOf: (item) => item.envelope.length,
  });
}

@Injectable()
export class MailPushService {
  constructor(
    private readonly sockets: RelaySockets,
    private readonly pushFlow: PushFlowControl,
    private readonly metrics: RelayMetrics,
  ) {}

  /**
   * Emits `events` (each a `mail` event's items) to this node's sockets of `recipient`, and counts
   * the messages that reached a socket as delivered. False when the recipient has no socket here.
   */
  push(recipient: AddressString, events: readonly MailItem[][]): boolean {
    const sockets = this.sockets.inMailbox(recipient);
    if (sockets.length === 0) return false;
    let delivered = 0;
    for (const mail of events) {
      let reached = false;
      for (const socket of sockets) {
        // One behind on its writes gets `mail:sync` when it drained instead.
        if (!this.pushFlow.admit(socket, mail.length)) continue;
        socket.emit('mail', { mail });
        reached = true;
      }
      if (reached) delivered += mail.length;
    }
    this.metrics.message('delivered', delivered);
    return true;
  }

  /**
   * Whether a push of `messages` messages to `recipient` could reach a socket here: one of its
   * sockets on this node is not behind. When all of them are, the messages count as withheld.
   */
  wants(recipient: AddressString, messages: number): boolean {
    const sockets = this.sockets.inMailbox(recipient);
    if (sockets.some((socket) => !this.pushFlow.isBehind(socket))) return true;
    for (const socket of sockets) this.pushFlow.admit(socket, messages);
    return false;
  }

  /** Sends `mail:sync` to each authenticated socket of `sockets`; returns how many. */
  sync(sockets: Iterable<RelaySocket>, reason: MailSyncReason): number {
    let told = 0;
    for (const socket of sockets) {
      if (!socket.data.address) continue;
      socket.emit('mail:sync', { reason });
      this.metrics.mailSync(reason);
      told++;
    }
    return told;
  }

  /** Sends `mail:sync` to this node's sockets of `recipient`. */
  syncMailbox(recipient: AddressString, reason: MailSyncReason): void {
    this.sync(this.sockets.inMailbox(recipient), reason);
  }
}
