/**
 * The socket.io packet parser both ends use: socket.io-parser (the default parser of socket.io
 * and socket.io-client 4.x), with its decoder's attachment bound raised from 10 to
 * MAX_SOCKET_BINARY_ATTACHMENTS so a send of 50 envelopes or a publish of 100 prekeys is not
 * refused as "too many attachments" (which closes the socket). Everything else is the stock
 * parser. Pass it as the `parser` option of the socket.io Server and of io().
 *
 * @example
 * new Server(httpServer, { parser: socketParser });
 * io(url, { parser: socketParser });
 */
import * as parser from 'socket.io-parser';
import { MAX_SOCKET_BINARY_ATTACHMENTS } from './limits.js';

class BoundedDecoder extends parser.Decoder {
  constructor() {
    super({ maxAttachments: MAX_SOCKET_BINARY_ATTACHMENTS });
  }
}

export const socketParser = {
  protocol: parser.protocol,
  PacketType: parser.PacketType,
  Encoder: parser.Encoder,
  Decoder: BoundedDecoder,
};
