// Preloaded (`node --expose-gc --import ./bench/peers/gc-hook.mjs ...`) into the processes whose
// memory the bench measures: on an IPC message `{ type: 'gc' }` it collects garbage a few times,
// lets the event loop settle, and answers `{ type: 'gc', done: true }`; the bench then reads the
// process's VmRSS from /proc/<pid>/status itself. Without an IPC channel it does nothing.
if (process.send && typeof globalThis.gc === 'function') {
  const gc = globalThis.gc;
  process.on('message', (message) => {
    if (message?.type !== 'gc') return;
    let rounds = 0;
    const again = () => {
      gc();
      if (++rounds < 3) globalThis.setTimeout(again, 100);
      else process.send({ type: 'gc', done: true });
    };
    again();
  });
  // The channel alone must not keep a process alive that would otherwise exit.
  process.channel?.unref();
}
