/** Where the socket.io server listens and who may connect. */
export interface RelaySocketOptions {
  /**
   * The socket.io path on the host's HTTP server. A host gateway of its own must use another path.
   * @default '/socket.io'
   */
  path?: string;
  /**
   * Browser origins allowed to connect (exact `scheme://host[:port]` strings). Empty: any origin.
   * Otherwise a request whose Origin header is not in the list is refused at connect (HTTP 403,
   * before any socket exists); clients that send no Origin (native apps, Node) are not affected.
   * @default []
   */
  allowedOrigins?: string[];
  /**
   * How a message reaches a recipient connected to another node: 'postgres' (the socket.io
   * PostgreSQL adapter on the relay's database: LISTEN/NOTIFY, binary payloads through the
   * `socket_io_attachments` table) or 'none' (a single node; live pushes stay on this node).
   * @default 'postgres'
   */
  adapter?: 'postgres' | 'none';
}
