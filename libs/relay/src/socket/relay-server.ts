/**
 * The relay's socket.io server as the features see it: its typed server and sockets, the server
 * options made from the `socket` options, and `RelaySockets`, which holds the server once Nest
 * created it and finds this node's sockets.
 */
import { Injectable } from '@nestjs/common';
import {
  type AddressString,
  type ClientToServerEvents,
  type InterServerEvents,
  ProtocolError,
  ProtocolErrorCode,
  SOCKET_MAX_HTTP_BUFFER_BYTES,
  type ServerToClientEvents,
  type SocketData,
  mailboxRoom,
  socketParser,
} from '@usm/protocol';
import type { IncomingMessage } from 'node:http';
import type { Server, ServerOptions, Socket } from 'socket.io';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { RelaySocketOptions } from './socket.options.js';

export type RelayServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type RelaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/**
 * socket.io server options from the module's `socket` options: the path, both transports, no
 * client bundle, SOCKET_MAX_HTTP_BUFFER_BYTES per packet, the protocol's parser, and the allowed
 * browser origins (CORS, and `allowRequest` refusing any other Origin with HTTP 403 at connect).
 */
export function relayServerOptions(socket: Required<RelaySocketOptions>): Partial<ServerOptions> {
  const { path, allowedOrigins } = socket;
  const allowed = new Set(allowedOrigins);
  return {
    path,
    serveClient: false,
    transports: ['websocket', 'polling'],
    maxHttpBufferSize: SOCKET_MAX_HTTP_BUFFER_BYTES,
    // Up to MAX_SOCKET_BINARY_ATTACHMENTS binary parts per packet (socket.io-parser's default is 10).
    parser: socketParser,
    cors: { origin: allowedOrigins.length === 0 ? true : allowedOrigins, credentials: false },
    allowRequest: (req: IncomingMessage, callback: (err: string | null | undefined, ok: boolean) => void) => {
      const origin = req.headers.origin;
      if (allowed.size === 0 || origin === undefined || allowed.has(origin)) return callback(null, true);
      callback('origin not allowed', false);
    },
  };
}

/**
 * The socket's authenticated address, set only by `handshake:complete` (the packet middleware lets
 * no other event of an unauthenticated socket through; this is the handlers' own check).
 */
export function authenticatedAddress(socket: RelaySocket): AddressString {
  const address = socket.data.address;
  if (!address) throw new ProtocolError(ProtocolErrorCode.Unauthenticated, M.unauthenticated());
  return address;
}

/** The socket.io server of this module instance, once the gateway has it, and its sockets here. */
@Injectable()
export class RelaySockets {
  private server: RelayServer | undefined;

  /** Called by the gateway when Nest has created the server. */
  attach(server: RelayServer): void {
    this.server = server;
  }

  /** The socket.io server, after Nest created it. */
  get io(): RelayServer | undefined {
    return this.server;
  }

  /** This node's sockets of `recipient`'s mailbox (an address normally has one). */
  inMailbox(recipient: AddressString): RelaySocket[] {
    const nsp = this.server?.of('/');
    const sockets: RelaySocket[] = [];
    for (const id of nsp?.adapter.rooms.get(mailboxRoom(recipient)) ?? []) {
      const socket = nsp?.sockets.get(id);
      if (socket) sockets.push(socket);
    }
    return sockets;
  }

  /** Every socket on this node. */
  all(): Iterable<RelaySocket> {
    return this.server?.of('/').sockets.values() ?? [];
  }
}
