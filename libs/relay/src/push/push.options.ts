/**
 * Push flow control's caps (push-flow-control.ts), set under the module's `mail` options:
 * `mail: { pushBacklogBytes, pushBacklogItems }`.
 */
export interface RelayPushOptions {
  /**
   * Most bytes the relay holds for one socket's pushes: what engine.io has queued for it plus
   * what its websocket has not handed to the kernel yet. At it, `mail` pushes to that socket stop
   * (the mail stays stored) until the socket has written down to half, then it gets `mail:sync`
   * and fetches (docs/relay.md, "Push flow control"). Two of the largest push events
   * (MAX_FETCH_PAGE_BYTES each): a client that reads holds a backlog only until the kernel's
   * socket buffers take what one event-loop turn wrote to it, so only a client slower than its
   * mail falls behind, and that costs it a fetch, not a message.
   * @default 196_608 (2 × MAX_FETCH_PAGE_BYTES)
   */
  pushBacklogBytes?: number;
  /**
   * Most engine.io packets queued for one socket, the same way (many small pushes are held by
   * count before their bytes add up). A push of MAX_FETCH_PAGE envelopes is 51 packets (the event
   * and one per binary attachment): this is five of those.
   * @default 256
   */
  pushBacklogItems?: number;
}
