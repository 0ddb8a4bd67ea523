/**
 * What reaches a handler. Every packet passes a per-socket socket.io middleware before any handler
 * or listener:
 * - an event name outside CLIENT_EVENTS (`error`, `__proto__`, numbers, ...) is refused with
 *   MALFORMED and dropped (and an unauthenticated socket is closed);
 * - any event but the two handshake events on an unauthenticated socket is refused with
 *   UNAUTHENTICATED, dropped, and the socket is closed;
 * - an event without an acknowledgement is dropped: nothing could report its fate.
 * A packet socket.io cannot decode (a forged binary placeholder) closes its socket.
 */
import type { Logger } from '@nestjs/common';
import {
  CLIENT_EVENTS,
  type ErrorReply,
  ProtocolError,
  ProtocolErrorCode,
  UNAUTHENTICATED_EVENTS,
} from '@usm/protocol';
import { toErrorReply } from '../relay-exception.filter.js';
import { RELAY_MESSAGES as M } from '../relay.messages.js';
import type { RelaySocket } from './relay-server.js';

const KNOWN_EVENTS: ReadonlySet<string> = new Set(CLIENT_EVENTS);
const OPEN_EVENTS: ReadonlySet<string> = new Set(UNAUTHENTICATED_EVENTS);

/** Installs the packet middleware and the error listener on a new socket. */
export function admitPackets(socket: RelaySocket, logger: Logger): void {
  // socket.io emits 'error' on a socket for an invalid packet; without a listener that throws.
  socket.on('error', () => socket.disconnect(true));
  socket.use((packet, next) => admit(socket, packet as unknown[], next, logger));
}

/** Closes the socket after the reply already queued on it has been written. */
export function closeSoon(socket: RelaySocket): void {
  setImmediate(() => socket.disconnect(true));
}

function admit(socket: RelaySocket, packet: unknown[], next: (err?: Error) => void, logger: Logger): void {
  const event = packet[0];
  const last = packet[packet.length - 1];
  const ack =
    packet.length > 1 && typeof last === 'function' ? (last as (reply: ErrorReply) => void) : undefined;
  const authenticated = socket.data.address !== undefined;
  const refuse = (err: ProtocolError, close: boolean) => {
    ack?.(toErrorReply(err, 'refused', logger));
    if (close) closeSoon(socket);
  };
  if (typeof event !== 'string' || !KNOWN_EVENTS.has(event)) {
    refuse(new ProtocolError(ProtocolErrorCode.Malformed, M.unknownEvent(CLIENT_EVENTS)), !authenticated);
    return;
  }
  if (!authenticated && !OPEN_EVENTS.has(event)) {
    refuse(new ProtocolError(ProtocolErrorCode.Unauthenticated, M.unauthenticated()), true);
    return;
  }
  // A request the client cannot learn the fate of is not run.
  if (ack) next();
}
