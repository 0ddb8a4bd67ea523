import { describe, expect, it } from '@jest/globals';
import { KeyedLock, SerialQueue } from './locks.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SerialQueue', () => {
  it('runs tasks one at a time in call order, also after one threw', async () => {
    const queue = new SerialQueue();
    const log: string[] = [];
    const task =
      (name: string, fail = false) =>
      async () => {
        log.push(`start ${name}`);
        await tick();
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      };
    const results = await Promise.allSettled([
      queue.run(task('a')),
      queue.run(task('b', true)),
      queue.run(task('c')),
    ]);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});

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
});
