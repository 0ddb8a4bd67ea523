/** Store cursors: a message's position in its recipient's mailbox (the bigint `seq` of `usm_mail`). */

/**
 * The largest store cursor: PostgreSQL's bigint maximum (2^63 - 1), as `seq` is a bigint. A larger
 * number would fail in the database (SQLSTATE 22003), not be refused as input.
 */
export const MAX_STORE_CURSOR = '9223372036854775807';

const CURSOR_PATTERN = /^(0|[1-9][0-9]{0,18})$/;

/**
 * True when `cursor` is a store cursor: a decimal integer from 0 to MAX_STORE_CURSOR without
 * leading zeros. `fetch` and `read` check every cursor with it before any SQL runs.
 */
export function isStoreCursor(cursor: unknown): cursor is string {
  return (
    typeof cursor === 'string' && CURSOR_PATTERN.test(cursor) && BigInt(cursor) <= BigInt(MAX_STORE_CURSOR)
  );
}
