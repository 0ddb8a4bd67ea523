/**
 * Things a section started that outlive it on purpose (the shared PostgreSQL) or must be stopped
 * even when it fails (child processes): registered here, undone by run.ts after the last section,
 * newest first. Child processes are also killed on exit, so an interrupted run leaves none behind.
 */
type Undo = () => Promise<unknown> | unknown;

const undos: Undo[] = [];

export function onTeardown(undo: Undo): void {
  undos.push(undo);
}

/** Runs every registered undo, newest first; failures are reported, not thrown. */
export async function teardown(): Promise<void> {
  while (undos.length > 0) {
    const undo = undos.pop()!;
    try {
      await undo();
    } catch (err) {
      console.warn(`bench: teardown step failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
