/**
 * Cross-node notices (docs/relay.md, "Cross-node push"). Mail for a recipient with no socket on the
 * node that stored it goes to the other nodes as `mail:available` notices through the socket.io
 * adapter: recipient and store cursors only, so the adapter sends a small NOTIFY (no attachment
 * row holding ciphertext for every other node to read back), and the node holding the socket
 * reads the rows from the store itself and pushes them. An address has one device
 * (docs/protocol.md, Addresses), so a recipient served here is normally served nowhere else; a
 * second socket of the same identity on another node (a reconnect racing the old socket's close)
 * gets that mail from its `fetch`, as any client does on connect: the mail stays stored until
 * acked.
 */
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AddressString, MailItem, MailNotice } from '@usm/protocol';
import { mailEvents, MailPushService } from '../mail/mail-push.service.js';
import { InjectMessageStore, type MessageStore } from '../mail/message-store.interface.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import { RelayError } from '../relay.errors.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import { RelaySockets } from '../socket/relay-server.js';

/** JSON bytes of one notice batch at most, under the PostgreSQL adapter's 8,000-byte NOTIFY threshold. */
const NOTICE_BATCH_BYTES = 6_000;

/**
 * Notices in batches of at most `maxCursors` cursors (the most one store read takes) and about
 * NOTICE_BATCH_BYTES of JSON, under the PostgreSQL adapter's 8,000-byte NOTIFY threshold (above it
 * the adapter writes an attachment row, which is what the notices avoid). A recipient with more
 * cursors than that is split over several notices.
 */
export function noticeBatches(notices: readonly MailNotice[], maxCursors: number): MailNotice[][] {
  const batches: MailNotice[][] = [];
  let batch: MailNotice[] = [];
  let cursors = 0;
  let bytes = 0;
  const flush = () => {
    if (batch.length > 0) batches.push(batch);
    batch = [];
    cursors = 0;
    bytes = 0;
  };
  for (const { recipient, cursors: all } of notices) {
    for (let i = 0; i < all.length;) {
      const room = Math.min(maxCursors - cursors, all.length - i);
      const size = recipient.length + 32 + 24 * room;
      if (room <= 0 || (batch.length > 0 && bytes + size > NOTICE_BATCH_BYTES)) {
        flush();
        continue;
      }
      batch.push({ recipient, cursors: all.slice(i, i + room) });
      cursors += room;
      bytes += size;
      i += room;
    }
  }
  flush();
  return batches;
}

@Injectable()
export class MailNoticeService {
  private readonly logger = new Logger('MessengerRelay');
  private readonly maxCursors: number;

  constructor(
    @Inject(RELAY_OPTIONS) options: Pick<ResolvedRelayOptions, 'mail'>,
    private readonly sockets: RelaySockets,
    @InjectMessageStore() private readonly store: MessageStore,
    private readonly pusher: MailPushService,
  ) {
    this.maxCursors = options.mail.maxNoticeCursors;
  }

  /**
   * Tells the other nodes about mail stored for recipients not held here. Always sent, not only
   * when the heartbeat adapter counts other nodes: its count lags after a database outage (a node
   * is forgotten after 10 s without heartbeats and learnt again only from its next message), and a
   * notice skipped then would leave its mail to the recipient's periodic fetch. On one node the
   * notice costs one NOTIFY that nobody reads (nothing with the in-memory adapter).
   */
  publish(notices: readonly MailNotice[]): void {
    const server = this.sockets.io;
    if (!server || notices.length === 0) return;
    for (const batch of noticeBatches(notices, this.maxCursors))
      server.serverSideEmit('mail:available', batch);
  }

  /**
   * Another node stored mail for recipients it holds no socket of: push the rows of those held
   * here (with a socket that is not behind), read from the store. A notice is checked before use
   * (it comes through the database); when the read fails, the mail stays stored and its
   * recipients' sockets here are told to fetch it now (`mail:sync`) rather than at their next sweep.
   */
  async receive(notices: unknown): Promise<void> {
    if (!this.sockets.io || !Array.isArray(notices)) return;
    const here = (notices as Partial<MailNotice>[]).filter(
      (n): n is MailNotice =>
        typeof n?.recipient === 'string' &&
        Array.isArray(n.cursors) &&
        this.pusher.wants(n.recipient as AddressString, n.cursors.length),
    );
    for (const batch of noticeBatches(here, this.maxCursors)) {
      try {
        const rows = await this.store.read(
          batch.map((n) => n.recipient),
          batch.flatMap((n) => n.cursors),
        );
        const mail = new Map<AddressString, MailItem[]>();
        for (const m of rows) {
          const recipient = m.recipient as AddressString;
          const items = mail.get(recipient) ?? [];
          items.push({
            envelope: m.envelope,
            sender: m.sender as AddressString,
            receivedAt: m.createdAt,
            cursor: m.cursor,
          });
          mail.set(recipient, items);
        }
        for (const [recipient, items] of mail) this.pusher.push(recipient, mailEvents(items));
      } catch (err) {
        this.logger.warn(
          M.noticeReadFailed(err instanceof RelayError && 'sqlState' in err ? String(err.sqlState) : 'n/a'),
        );
        for (const n of batch) this.pusher.syncMailbox(n.recipient, 'notices');
      }
    }
  }
}
