/**
 * Several relay nodes on one database: the socket.io PostgreSQL adapter on the relay's pool
 * (`socket.adapter: 'postgres'`, through AdapterPool), `mail:available` notices from the other
 * nodes (MailNoticeService), `mail:sync` to this node's sockets when its LISTEN connection came
 * back, and the adapter's close at shutdown, before the relay's pool ends.
 */
import { Inject, Injectable, Logger } from '@nestjs/common';
import { createAdapter } from '@socket.io/postgres-adapter';
import { RelayDatabase } from '../database/relay-database.js';
import { MailPushService } from '../mail/mail-push.service.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import { type RelayServer, RelaySockets } from '../socket/relay-server.js';
import { AdapterPool } from './adapter-pool.js';
import { MailNoticeService } from './mail-notices.service.js';

@Injectable()
export class RelayClusterService {
  private readonly logger = new Logger('MessengerRelay');
  private pool: AdapterPool | undefined;

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: Pick<ResolvedRelayOptions, 'socket'>,
    private readonly db: RelayDatabase,
    private readonly sockets: RelaySockets,
    private readonly notices: MailNoticeService,
    private readonly pusher: MailPushService,
  ) {}

  /** Called by the gateway with the new server: listens to the other nodes' notices, sets the adapter. */
  attach(server: RelayServer): void {
    server.on('mail:available', (notices) => void this.notices.receive(notices));
    if (this.options.socket.adapter !== 'postgres') return;
    const failed = (err: Error) => {
      const code = (err as { code?: unknown }).code;
      this.logger.warn(M.adapterFailed(typeof code === 'string' ? code : err.constructor.name));
    };
    this.pool = new AdapterPool(this.db.pgPool, { failed, relistened: () => this.syncAll() });
    server.adapter(
      createAdapter(this.pool.asPool(), {
        tableName: 'socket_io_attachments',
        errorHandler: failed,
      }) as unknown as Parameters<RelayServer['adapter']>[0],
    );
  }

  /**
   * Closes the adapter of every namespace (the last one releases the LISTEN client) and waits
   * until those connections have ended. Runs before the relay's pool ends; Nest's own close of the
   * server later finds the adapter closed.
   */
  async close(): Promise<void> {
    const server = this.sockets.io;
    if (!server || !this.pool || this.pool.closed) return;
    this.pool.close();
    for (const nsp of server._nsps.values()) await nsp.adapter.close();
    await this.pool.released();
  }

  /** The LISTEN connection came back: every authenticated socket here fetches what it may have missed. */
  private syncAll(): void {
    if (!this.sockets.io || this.pool?.closed) return;
    const told = this.pusher.sync(this.sockets.all(), 'notices');
    this.logger.log(M.noticesResumed(told));
  }
}
