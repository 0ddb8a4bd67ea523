import { describe, expect, it } from '@jest/globals';
import { KeyedLock } from './locks.js';

describe('KeyedLock', () => {
  it('serialises per key and lets other keys run meanwhile', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = lock.run('bob', async () => {
      log.push('bob 1');
      await gate;
      log.push('bob 1 done');
    });
    const second = lock.run('bob', async () => void log.push('bob 2'));
    await lock.run('carol', async () => void log.push('carol'));
    expect(log).toEqual(['bob 1', 'carol']);
    release();
    await Promise.all([first, second]);
    expect(log).toEqual(['bob 1', 'carol', 'bob 1 done', 'bob 2']);
  });

  it('runs the next task of a key after one threw, and hands each caller its own outcome', async () => {
    const lock = new KeyedLock();
    const failed = lock.run('bob', async () => {
      throw new Error('first');
    });
    const next = lock.run('bob', async () => 'second');
    await expect(failed).rejects.toThrow('first');
    await expect(next).resolves.toBe('second');
    await expect(lock.run('bob', async () => 'again')).resolves.toBe('again');
  });
});
