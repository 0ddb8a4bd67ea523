/**
 * Cleanup: how long the relay's own cleanup (RelayCleanupService.runOnce, run by
 * bench/peers/cleanup-once.mjs with the built package, default batch size 5,000) takes to delete
 * a million expired messages (quick: 100,000), and what it does to delivery latency at
 * 1,000 msgs/s on a relay node on the same PostgreSQL while it runs.
 */
import { startChild } from '../lib/children.js';
import { relayFleet } from '../lib/fleet.js';
import { openLoop } from '../lib/load.js';
import { settle } from '../lib/measure.js';
import { freshDatabase, withClient } from '../lib/postgres.js';
import { formatNumber } from '../lib/report.js';
import { relayIdentity, startRelayNode } from '../lib/relay-node.js';
import { defineSection, type SectionContext } from '../lib/section.js';

const rows = (quick: boolean) => (quick ? 100_000 : 1_000_000);
/** Envelope bytes of the expired rows: a short message in a small padding bucket. */
const ENVELOPE_BYTES = 256;
const RECIPIENTS = 1_000;
const RATE = 1_000;
/**
 * The rows expire a day from now and the cleanup run's clock is two days ahead: only that run
 * sees them as expired, not the cron job of the relay node carrying the load (it runs every minute).
 */
const CLOCK_AHEAD_MS = 2 * 24 * 3600 * 1000;

async function run(ctx: SectionContext): Promise<void> {
  ctx.step('starting PostgreSQL and a relay node');
  const db = await freshDatabase('cleanup');
  const node = await startRelayNode(db.url);
  const { keyPair, file } = await relayIdentity();
  const fleet = await relayFleet([node.url], keyPair.publicKey, 10);
  try {
    const n = rows(ctx.quick);
    ctx.step(`inserting ${formatNumber(n)} expired messages`);
    await withClient(db.url, async (c) => {
      // Expiring in a day (expired for the cleanup run's clock); ids distinct; filler envelopes.
      await c.query(
        `INSERT INTO usm_mail (recipient, message_id, sender, envelope, created_at, expires_at)
         SELECT 'bench-recipient-' || (i % $2), decode(lpad(to_hex(i), 32, '0'), 'hex'), 'bench-sender',
                decode(repeat('ab', $3), 'hex'), now(), now() + interval '1 day'
           FROM generate_series(1, $1) AS i`,
        [n, RECIPIENTS, ENVELOPE_BYTES],
      );
      await c.query('VACUUM ANALYZE usm_mail');
    });

    ctx.step(`delivery at ${formatNumber(RATE)} msgs/s without cleanup`);
    settle();
    const before = await openLoop(fleet, { rate: RATE, durationMs: ctx.quick ? 2_000 : 5_000 });

    ctx.step(`cleanup of ${formatNumber(n)} rows, delivery at ${formatNumber(RATE)} msgs/s meanwhile`);
    const script = startChild(
      ['bench/peers/cleanup-once.mjs'],
      { DATABASE_URL: db.url, RELAY_IDENTITY_FILE: file, CLOCK_AHEAD_MS: String(CLOCK_AHEAD_MS) },
      'cleanup',
    );
    await script.waitFor(/cleanup started/);
    let finished = false;
    const done = script.waitFor(/cleanup done (\{.*\})/, 600_000).finally(() => {
      finished = true;
    });
    const during = await openLoop(fleet, {
      rate: RATE,
      durationMs: 600_000,
      warmupMs: 0,
      until: () => finished,
    });
    const result = JSON.parse((await done)[1]!) as {
      ms: number;
      report: { mail: number; statements: number };
    };
    await script.stop();
    const left = await withClient(db.url, (c) =>
      c.query<{ n: string }>(
        `SELECT count(*) AS n FROM usm_mail WHERE expires_at < now() + interval '2 days'`,
      ),
    );
    ctx.record('rows', n);
    ctx.record('deleted', result.report.mail);
    ctx.record('expired_left', Number(left.rows[0]?.n ?? -1));
    ctx.record('seconds', result.ms / 1000);
    ctx.record('rows_per_s', result.report.mail / (result.ms / 1000));
    ctx.record('statements', result.report.statements);
    ctx.record('before_p50_ms', before.p50);
    ctx.record('before_p99_ms', before.p99);
    ctx.record('during_p50_ms', during.p50);
    ctx.record('during_p99_ms', during.p99);
    ctx.record('during_p999_ms', during.p999);
    ctx.record('during_messages', during.delivered);
  } finally {
    fleet.close();
    await node.stop();
  }
}

export const cleanup = defineSection({
  id: 'cleanup',
  title: 'Cleanup of expired mail',
  description:
    `A million expired messages (quick: 100,000; ${ENVELOPE_BYTES}-byte envelopes over ${formatNumber(RECIPIENTS)} ` +
    "recipients, inserted with SQL) deleted by one run of the relay's own RelayCleanupService.runOnce " +
    '(bench/peers/cleanup-once.mjs: the built package in an application context, default batch size 5,000 ' +
    'rows per statement, each its own transaction; its clock runs two days ahead and the rows expire in one, ' +
    "so the relay node's own cron job does not race it for them). Meanwhile a relay node on the same " +
    'PostgreSQL carries an ' +
    `open-loop load of ${formatNumber(RATE)} msgs/s; its latency is compared with the same load just before.`,
  quickBudgetSeconds: 30,
  metrics: [
    { key: 'rows', label: 'expired messages', unit: '' },
    { key: 'seconds', label: 'time to delete them (one run)', unit: 's', digits: 2 },
    { key: 'rows_per_s', label: 'deleted per second', unit: 'rows/s' },
    { key: 'deleted', label: 'rows the run reported deleted', unit: '' },
    { key: 'expired_left', label: 'expired rows left afterwards', unit: '' },
    { key: 'before_p50_ms', label: `delivery p50 at ${formatNumber(RATE)}/s, before`, unit: 'ms' },
    { key: 'before_p99_ms', label: `delivery p99 at ${formatNumber(RATE)}/s, before`, unit: 'ms' },
    { key: 'during_p50_ms', label: `delivery p50 at ${formatNumber(RATE)}/s, during cleanup`, unit: 'ms' },
    { key: 'during_p99_ms', label: `delivery p99 at ${formatNumber(RATE)}/s, during cleanup`, unit: 'ms' },
  ],
  plan: () => 4,
  run,
});
