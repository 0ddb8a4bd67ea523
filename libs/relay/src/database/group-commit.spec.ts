import { GroupCommit, type GroupCommitOptions } from './group-commit.js';

interface Call {
  name: string;
  keys?: string[];
  weight?: number;
}

/** A group handed to the fake `run`, settled by the test. */
interface Group {
  readonly calls: readonly string[];
  readonly keys: ReadonlySet<string>;
  settled: boolean;
  finish(err?: Error): void;
}

/** A batcher whose `run` records each group and waits for the test to finish it. */
function harness(options: Omit<GroupCommitOptions<Call, string>, 'run'> = {}) {
  const groups: Group[] = [];
  let mostAtOnce = 0;
  const overlaps: string[] = [];
  const batcher = new GroupCommit<Call, string>({
    keys: (call) => call.keys ?? [],
    weight: (call) => call.weight ?? 1,
    ...options,
    run: (calls) =>
      new Promise<string[]>((resolve, reject) => {
        const keys = new Set(calls.flatMap((c) => c.keys ?? []));
        const running = groups.filter((g) => !g.settled);
        for (const other of running) overlaps.push(...[...keys].filter((k) => other.keys.has(k)));
        mostAtOnce = Math.max(mostAtOnce, running.length + 1);
        const group: Group = {
          calls: calls.map((c) => c.name),
          keys,
          settled: false,
          finish(err) {
            group.settled = true;
            if (err) reject(err);
            else resolve(calls.map((c) => `${c.name}:done`));
          },
        };
        groups.push(group);
      }),
  });
  const group = (i: number): Group => {
    const g = groups[i];
    if (!g) throw new Error(`no group ${i} yet (${groups.length} started)`);
    return g;
  };
  return { batcher, groups, group, overlaps, mostAtOnce: () => mostAtOnce };
}

/** Lets settled groups' callbacks run (and the next groups start). */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('starts a lone call at once and resolves it with its own result', async () => {
    const { batcher, groups, group } = harness();
    const result = batcher.submit({ name: 'a' });
    expect(groups.map((g) => g.calls)).toEqual([['a']]);
    group(0).finish();
    await expect(result).resolves.toBe('a:done');
  });

  it('puts every call that arrived while a group ran into the next group, each with its own result', async () => {
    const { batcher, groups, group } = harness();
    const a = batcher.submit({ name: 'a' });
    const rest = ['b', 'c', 'd'].map((name) => batcher.submit({ name }));
    expect(groups).toHaveLength(1);
    group(0).finish();
    await turn();
    expect(groups.map((g) => g.calls)).toEqual([['a'], ['b', 'c', 'd']]);
    group(1).finish();
    await expect(a).resolves.toBe('a:done');
    await expect(Promise.all(rest)).resolves.toEqual(['b:done', 'c:done', 'd:done']);
  });

  it('runs at most `concurrency` groups, never two sharing a key, and calls sharing a key in arrival order', async () => {
    const { batcher, groups, group, overlaps, mostAtOnce } = harness({ concurrency: 2 });
    const calls = [
      batcher.submit({ name: 'a', keys: ['k1'] }),
      batcher.submit({ name: 'b', keys: ['k1'] }), // k1 is in flight: waits
      batcher.submit({ name: 'c', keys: ['k2'] }), // starts beside a
      batcher.submit({ name: 'd', keys: ['k1', 'k2'] }), // both in flight
      batcher.submit({ name: 'e', keys: ['k3'] }), // two groups run already
    ];
    expect(groups.map((g) => g.calls)).toEqual([['a'], ['c']]);
    group(0).finish();
    await turn();
    // d shares k2 with c (in flight), so it waits, and holds k1 back for nothing later than it.
    expect(groups.map((g) => g.calls)).toEqual([['a'], ['c'], ['b', 'e']]);
    group(1).finish();
    await turn();
    expect(groups).toHaveLength(3); // d still shares k1 with b
    group(2).finish();
    await turn();
    expect(groups.map((g) => g.calls)).toEqual([['a'], ['c'], ['b', 'e'], ['d']]);
    group(3).finish();
    await expect(Promise.all(calls)).resolves.toEqual(['a:done', 'b:done', 'c:done', 'd:done', 'e:done']);
    expect(overlaps).toEqual([]);
    expect(mostAtOnce()).toBe(2);
  });

  it('keeps a group within maxWeight, except a first call heavier than that, which goes alone', async () => {
    const { batcher, groups, group } = harness({ maxWeight: 10 });
    const calls = [
      batcher.submit({ name: 'x', weight: 1 }),
      batcher.submit({ name: 'y', weight: 6 }),
      batcher.submit({ name: 'z', weight: 6 }),
      batcher.submit({ name: 'big', weight: 20 }),
      batcher.submit({ name: 'w', weight: 3 }),
    ];
    for (let i = 0; i < 4; i++) {
      group(i).finish();
      await turn();
    }
    expect(groups.map((g) => g.calls)).toEqual([['x'], ['y', 'w'], ['z'], ['big']]);
    await expect(Promise.all(calls)).resolves.toEqual(['x:done', 'y:done', 'z:done', 'big:done', 'w:done']);
  });

  it('fails every call of a failed group with its error, and goes on with the next group', async () => {
    const { batcher, group } = harness();
    const a = batcher.submit({ name: 'a' });
    const b = batcher.submit({ name: 'b' });
    const c = batcher.submit({ name: 'c' });
    group(0).finish();
    await turn();
    const broken = new Error('connection lost');
    group(1).finish(broken);
    expect(await Promise.allSettled([b, c])).toEqual([
      { status: 'rejected', reason: broken },
      { status: 'rejected', reason: broken },
    ]);
    await expect(a).resolves.toBe('a:done');
    const d = batcher.submit({ name: 'd' });
    group(2).finish();
    await expect(d).resolves.toBe('d:done');
  });
});
