/**
 * `npm start`: runs the sample relay. With no DATABASE_URL it starts embedded PostgreSQL in
 * DATA_DIR first; the relay's migrations run at start-up. Prints where it listens, the health and
 * metrics addresses, and the relay's identity (clients pin the public key). Logs are JSON lines.
 */
import 'reflect-metadata';
import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { toHex } from '@usm/crypto';
import { RelayIoAdapter } from '@usm/relay';
import { AppModule } from './app.module.js';
import { ConfigError, loadConfig, type RelayServerConfig } from './config.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './embedded-database.js';
import { loadOrCreateRelayIdentity } from './relay-identity.js';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

function loggerFor(config: RelayServerConfig): ConsoleLogger {
  const upTo = LEVELS.indexOf(config.logLevel);
  return new ConsoleLogger('relay-server', { json: true, logLevels: LEVELS.slice(0, upTo + 1) });
}

async function main(): Promise<void> {
  let config: RelayServerConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`relay-server: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = loggerFor(config);

  const { identity, created, warnings } = await loadOrCreateRelayIdentity(config.identityFile);
  for (const w of warnings) logger.warn(w);

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    logger.log(`no DATABASE_URL: starting embedded PostgreSQL in ${config.dataDir}`);
    embedded = await startEmbeddedDatabase({
      dataDir: config.dataDir,
      port: config.embeddedPostgresPort,
      log: (line) => logger.debug(line, 'postgres'),
    });
    databaseUrl = embedded.url;
  }

  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot({ config, databaseUrl, identity }),
    { logger, bufferLogs: false },
  );
  // Plain per-socket listeners instead of Nest's per-socket rxjs pipelines (relay-io.adapter.ts).
  app.useWebSocketAdapter(new RelayIoAdapter(app));
  if (config.webDemoDir) app.useStaticAssets(config.webDemoDir);
  await app.listen(config.port, config.host);

  const url = (await app.getUrl()).replace('[::1]', 'localhost').replace('127.0.0.1', 'localhost');
  const publicKey = toHex(identity.publicKey.bytes);
  const lines = [
    `relay listening on ${url} (socket.io path /socket.io)`,
    `health:  ${url}/health`,
    `metrics: ${url}/metrics`,
    `relay identity ${created ? '(new) ' : ''}${identity.publicKey.fingerprint()}; clients pin public key ${publicKey}`,
    `database: ${embedded ? `embedded PostgreSQL (${config.dataDir})` : 'DATABASE_URL'}`,
  ];
  if (config.webDemoDir) lines.push(`web demo: ${url}/`);
  process.stdout.write(lines.map((l) => `  ${l}`).join('\n') + '\n');

  const stop = async (signal: string) => {
    logger.log(`${signal}: shutting down`);
    await app.close();
    await embedded?.stop();
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop(signal));
}

main().catch((err: unknown) => {
  console.error('relay-server failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
