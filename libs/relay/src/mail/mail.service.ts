/**
 * The mail events (`send`, `ack`, `fetch`) on the message store, for an authenticated address:
 * the sender of an envelope is the socket's own address (stamped, never taken from the payload),
 * and mail is fetched and acked for that address only.
 *
 * A send is acknowledged only after the store's transaction committed; then the mail is pushed to
 * the recipient's sockets on this node (MailPushService), or, for a recipient with none here, the
 * other nodes get a `mail:available` notice (cluster/mail-notices.service.ts). From shutdown on,
 * sends are refused with UNAVAILABLE and nothing is stored.
 */
import { Inject, Injectable } from '@nestjs/common';
import {
  type AckRequest,
  type AckResult,
  type AddressString,
  DEFAULT_FETCH_PAGE,
  type FetchRequest,
  type FetchResult,
  MAX_FETCH_PAGE_BYTES,
  type MailItem,
  type MailNotice,
  ProtocolError,
  ProtocolErrorCode,
  type Reply,
  type SendOutcome,
  type SendRequest,
  type SendResult,
  formatAddress,
  formatMessageId,
  parseMessageId,
  peekEnvelopeRoute,
} from '@usm/protocol';
import { MailNoticeService } from '../cluster/mail-notices.service.js';
import { RelayMetrics } from '../metrics/metrics.service.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import { RelayRequests } from '../socket/relay-requests.service.js';
import { MailPushService } from './mail-push.service.js';
import { InjectMessageStore, type MessageStore, type OutgoingEnvelope } from './message-store.interface.js';

/** One recipient's new mail from one send: the items to push and their store cursors. */
interface Push {
  mail: MailItem[];
  cursors: string[];
}

@Injectable()
export class RelayMailService {
  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: Pick<ResolvedRelayOptions, 'mail'>,
    @InjectMessageStore() private readonly store: MessageStore,
    private readonly requests: RelayRequests,
    private readonly pusher: MailPushService,
    private readonly notices: MailNoticeService,
    private readonly metrics: RelayMetrics,
  ) {}

  /**
   * Stores `sender`'s envelopes: each gets its own outcome, in order. An envelope whose route
   * cannot be read is `rejected` with its code and a full mailbox's with QUOTA_EXCEEDED; the rest
   * of the batch goes on. Only `stored` mail is pushed (a `duplicate` was pushed before).
   */
  async send(sender: AddressString, { envelopes }: SendRequest): Promise<Reply<SendResult>> {
    if (this.requests.closing) throw new ProtocolError(ProtocolErrorCode.Unavailable, M.shuttingDown());
    const results: SendOutcome[] = new Array<SendOutcome>(envelopes.length);
    const routed: { index: number; envelope: OutgoingEnvelope }[] = [];
    envelopes.forEach((bytes, index) => {
      try {
        const route = peekEnvelopeRoute(bytes);
        routed.push({
          index,
          envelope: { recipient: formatAddress(route.recipient), messageId: route.id, envelope: bytes },
        });
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        results[index] = { status: 'rejected', code: err.code, message: err.message };
      }
    });

    // Resolves only after the transaction committed: the reply is never ahead of the data.
    const stored =
      routed.length > 0
        ? await this.store.store(
            sender,
            routed.map((r) => r.envelope),
          )
        : [];
    const pushes = new Map<AddressString, Push>();
    stored.forEach((result, i) => {
      const { index, envelope } = routed[i] as (typeof routed)[number];
      if (result.status === 'rejected') {
        results[index] = {
          status: 'rejected',
          code: ProtocolErrorCode.QuotaExceeded,
          message: result.message,
        };
        return;
      }
      results[index] = { status: result.status, id: formatMessageId(result.messageId) };
      if (result.status === 'stored') {
        const recipient = result.recipient as AddressString;
        const push = pushes.get(recipient) ?? { mail: [], cursors: [] };
        push.mail.push({
          envelope: envelope.envelope,
          sender,
          receivedAt: result.createdAt,
          cursor: result.cursor,
        });
        push.cursors.push(result.cursor);
        pushes.set(recipient, push);
      }
    });
    this.deliver(pushes);
    return { status: 'ok', results };
  }

  /** Deletes `recipient`'s mail with these ids, in store calls of `mail.maxAcksPerCall` ids. */
  async ack(recipient: AddressString, { ids }: AckRequest): Promise<Reply<AckResult>> {
    const bytes = ids.map((id) => parseMessageId(id));
    const chunk = this.options.mail.maxAcksPerCall;
    let deleted = 0;
    for (let i = 0; i < bytes.length; i += chunk) {
      deleted += await this.store.ack(recipient, bytes.slice(i, i + chunk));
    }
    return { status: 'ok', deleted };
  }

  /**
   * A page of `recipient`'s mail, oldest first: at most `min(limit, mail.maxFetchPage)` items and
   * MAX_FETCH_PAGE_BYTES of envelopes, but always at least one item; a cursor while more remain.
   */
  async fetch(recipient: AddressString, { cursor, limit }: FetchRequest): Promise<Reply<FetchResult>> {
    const n = Math.min(limit ?? DEFAULT_FETCH_PAGE, this.options.mail.maxFetchPage);
    const page = await this.store.fetch(recipient, cursor ?? null, n);
    const mail: MailItem[] = [];
    let bytes = 0;
    let last: string | null = null;
    for (const m of page.messages) {
      if (mail.length > 0 && bytes + m.envelope.length > MAX_FETCH_PAGE_BYTES) break;
      mail.push({
        envelope: m.envelope,
        sender: m.sender as AddressString,
        receivedAt: m.createdAt,
        cursor: m.cursor,
      });
      bytes += m.envelope.length;
      last = m.cursor;
    }
    this.metrics.message('delivered', mail.length);
    const more = page.hasMore || mail.length < page.messages.length;
    return { status: 'ok', mail, cursor: more ? last : null };
  }

  /**
   * Pushes each recipient's new mail to its sockets on this node; the mail of recipients with no
   * socket here goes to the other nodes as notices (recipient and store cursors).
   */
  private deliver(pushes: ReadonlyMap<AddressString, Push>): void {
    const remote: MailNotice[] = [];
    for (const [recipient, { mail, cursors }] of pushes) {
      if (!this.pusher.push(recipient, [mail])) remote.push({ recipient, cursors });
    }
    this.notices.publish(remote);
  }
}
