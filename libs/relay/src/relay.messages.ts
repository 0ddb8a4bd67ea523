/**
 * Every text the relay shows a developer, an operator or a client. Each says what is wrong and how
 * to fix it. None may contain a payload, a key, a nonce, a database URL (it holds a password) or a
 * row: they are logged and sent over the wire.
 */
const WHERE =
  'Fix it in MessengerRelayModule.forRoot({...}) or in the object your forRootAsync factory returns.';

export const RELAY_MESSAGES = {
  missingDatabase: () =>
    `USM relay: option "database" is required. Pass { url: 'postgres://user:password@host:5432/db' } for a ` +
    `connection the relay owns, or { dataSource } to share an initialised PostgreSQL DataSource of yours. ${WHERE}`,
  ambiguousDatabase: () =>
    `USM relay: option "database" takes either "url" or "dataSource", not both. Keep the one you mean. ${WHERE}`,
  badDatabaseUrl: () =>
    `USM relay: option "database.url" must be a postgres:// or postgresql:// URL (the value is not shown: it may ` +
    `hold a password). ${WHERE}`,
  notPostgres: (type: string) =>
    `USM relay: option "database.dataSource" must be a PostgreSQL DataSource (type 'postgres'), got type ` +
    `'${type}'. The relay's store relies on PostgreSQL (ON CONFLICT, SKIP LOCKED, bytea). ${WHERE}`,
  dataSourceNotInitialised: () =>
    `USM relay: the DataSource given as "database.dataSource" is not initialised. Call ` +
    `await dataSource.initialize() before the relay starts, or pass { url } and let the relay own one.`,
  notAnInteger: (path: string, min: number, max: number, got: unknown) =>
    `USM relay: option "${path}" must be an integer from ${min} to ${max}, got ${describe(got)}. ${WHERE}`,
  notABoolean: (path: string, got: unknown) =>
    `USM relay: option "${path}" must be true or false, got ${describe(got)}. ${WHERE}`,
  notAString: (path: string, got: unknown) =>
    `USM relay: option "${path}" must be a non-empty string, got ${describe(got)}. ${WHERE}`,
  badCron: (path: string, expression: string) =>
    `USM relay: option "${path}" is not a valid cron expression: '${expression}'. Use six fields with seconds ` +
    `('0 * * * * *' is every minute) or five without. ${WHERE}`,
  badRateLimitRule: (path: string) =>
    `USM relay: option "${path}" must be false (no limit) or { points, durationSeconds } with positive ` +
    `integers, e.g. { points: 100, durationSeconds: 5 }. ${WHERE}`,
  unknownBucket: (name: string, known: readonly string[]) =>
    `USM relay: option "rateLimits.buckets.${name}" names no rate-limit bucket; the buckets are ` +
    `${known.join(', ')}. ${WHERE}`,
  badPrefix: (got: string) =>
    `USM relay: option "metrics.prefix" must match [a-zA-Z_:][a-zA-Z0-9_:]* (a Prometheus metric name ` +
    `prefix), got '${got}'. ${WHERE}`,
  badIdentity: () =>
    `USM relay: option "identity" is required: the relay's persistent Ed25519 IdentityKeyPair from @usm/crypto, ` +
    `which clients pin. Create it once with generateIdentityKeyPair(), keep identity.secretKey.encode() in a ` +
    `file or secret store only the relay reads, and pass decodeIdentityKeyPair(saved) at every start. ${WHERE}`,
  badSocketPath: (got: string) =>
    `USM relay: option "socket.path" must be an absolute URL path such as '/socket.io' (letters, digits, ` +
    `'.', '_', '~', '-', '/'), got '${got.length > 40 ? `${got.slice(0, 40)}...` : got}'. ${WHERE}`,
  badOrigins: (index: number) =>
    `USM relay: option "socket.allowedOrigins" must be an array of origins such as 'https://chat.example.com' ` +
    `(scheme://host[:port], no path)${index >= 0 ? `; item ${index} is not one` : ''}. Leave it empty to allow ` +
    `any origin. ${WHERE}`,
  badAdapter: (got: string) =>
    `USM relay: option "socket.adapter" must be 'postgres' (several nodes on one database) or 'none' (one ` +
    `node), got '${got.length > 40 ? `${got.slice(0, 40)}...` : got}'. ${WHERE}`,
  deprecatedOption: (name: string, replacements: readonly string[]) =>
    `USM relay: option "${name}" is deprecated; it is read as ${replacements.map((r) => `"${r}"`).join(', ')} ` +
    `for now. Set ${replacements.length > 1 ? 'those' : 'that'} instead. ${WHERE}`,
  lowWaterAboveMax: (lowWater: number, max: number) =>
    `USM relay: option "prekeys.lowWaterMark" (${lowWater}) must be below "prekeys.maxStoredOneTimePrekeys" ` +
    `(${max}), or a client would be told to refill forever. ${WHERE}`,

  // Requests (sent to clients through the gateway's exception filter).
  batchTooLarge: (count: number, max: number) =>
    `Too many envelopes in one request: ${count}, at most ${max}. Split the batch.`,
  badEnvelope: (index: number) =>
    `Envelope ${index} must be an object { recipient, messageId, envelope, ttlMs? } with byte arrays.`,
  envelopeTooLarge: (index: number, size: number, max: number) =>
    `Envelope ${index} is ${size} bytes, at most ${max} are accepted. Pad to a smaller bucket or split the message.`,
  badMessageId: (index: number, size: number, expected: number) =>
    `Envelope ${index} has a ${size}-byte message id, expected ${expected} random bytes.`,
  badAddress: (field: string, length: number, max: number) =>
    `The ${field} address must be 1 to ${max} characters, got ${length}.`,
  badTtl: (index: number) =>
    `Envelope ${index} asks for a TTL that is not a positive integer of milliseconds.`,
  badCursor: (max: string) =>
    `A cursor must be one the relay handed out, a decimal integer from 0 to ${max} without leading zeros: ` +
    `pass the "cursor" of the last page, or none.`,
  badLimit: (max: number) => `The fetch limit must be an integer from 1 to ${max}.`,
  tooManyIds: (count: number, max: number) => `Too many message ids in one ack: ${count}, at most ${max}.`,
  readTooLarge: (what: 'recipients' | 'cursors', count: number, max: number) =>
    `Too many ${what} in one read: ${count}, at most ${max}.`,
  quotaExceeded: (quota: number) =>
    `The recipient's mailbox is full (${quota} undelivered messages). Retry after the recipient has fetched its mail.`,
  rateLimited: (bucket: string, retryAfterMs: number) =>
    `Too many ${bucket} requests. Retry after ${retryAfterMs} ms.`,
  badNonce: (length: number, min: number, max: number) =>
    `A replay nonce must be ${min} to ${max} bytes, got ${length}.`,
  tooManyOneTimePrekeys: (count: number, max: number) =>
    `Too many one-time prekeys in one upload: ${count}, at most ${max}.`,
  prekeyStoreFull: (max: number) =>
    `The directory already holds the most one-time prekeys an identity may store (${max}). Upload more after some are claimed.`,
  firstUploadIncomplete: () =>
    `The first prekey upload of an identity must carry its identity key, a signed prekey and a signed KEM prekey.`,
  identityKeyChanged: () =>
    `This address is bound to another identity key. An identity key never changes; register a new identity instead.`,
  badKey: (field: string, length: number, max: number) =>
    `The ${field} must be 1 to ${max} bytes, got ${length}.`,
  badKeyId: (field: string) => `The ${field} key id must be an integer from 0 to 2^53 - 1.`,
  database: (sqlState: string) =>
    `The relay's database failed (SQLSTATE ${sqlState}). The request may be retried; operators: see the server log.`,

  // Socket replies (the gateway's exception filter and its packet middleware).
  unauthenticated: () =>
    `This event needs an authenticated socket: run handshake:init and handshake:complete first. ` +
    `The relay closes this socket; reconnect and authenticate.`,
  unknownEvent: (known: readonly string[]) => `Unknown event: the relay's events are ${known.join(', ')}.`,
  alreadyAuthenticated: () => `This socket is already authenticated; a handshake runs once per connection.`,
  secondInit: () => 'handshake: one handshake:init per connection',
  completeBeforeInit: () => 'handshake: handshake:complete before handshake:init',
  noAck: () => `Every relay event needs an acknowledgement callback (emitWithAck).`,
  noPrekeys: () =>
    `No prekeys are published for this address: the device has not registered yet, or the address is wrong.`,
  shuttingDown: () => `This relay node is shutting down: reconnect (to it or another node) and retry.`,
  internal: () => `The relay failed on its side; retry later. Operators: see the server log.`,

  // Operations (logged).
  migrationsFailed: (reason: string) =>
    `USM relay: running the relay's migrations failed: ${reason}. Check that the database user may create tables, ` +
    `or set database.migrationsRun: false and run them yourself (RELAY_MIGRATIONS).`,
  unexpectedError: (event: string, name: string) =>
    `USM relay: '${event}' failed with an unexpected ${name}; the client got INTERNAL (stack follows, message withheld)`,
  handlerEscaped: (event: string, name: string) =>
    `USM relay: '${event}' failed with an unexpected ${name} outside the exception filter; no reply was sent ` +
    `(stack follows, message withheld)`,
  databaseFailed: (event: string, sqlState: string, objects: string) =>
    `USM relay: '${event}' failed in the database (SQLSTATE ${sqlState}${objects ? `; ${objects}` : ''}); ` +
    `the client got UNAVAILABLE (server message withheld)`,
  adapterFailed: (code: string) =>
    `USM relay: the socket.io PostgreSQL adapter failed (${code}); cross-node pushes may be delayed, ` +
    `clients still get their mail by fetch.`,
  noticesResumed: (sockets: number) =>
    `USM relay: the socket.io PostgreSQL adapter is listening again; ${sockets} connected client(s) told to fetch ` +
    `the mail other nodes stored meanwhile (mail:sync).`,
  noticeReadFailed: (sqlState: string) =>
    `USM relay: reading the mail of a 'mail:available' notice failed (SQLSTATE ${sqlState}); ` +
    `its recipients here are told to fetch it (mail:sync).`,
  cleanupFailed: (sqlState: string) =>
    `USM relay: a cleanup run failed (SQLSTATE ${sqlState}); the next run retries.`,
} as const;

/** Shows a rejected option value without echoing long or nested data. */
function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
