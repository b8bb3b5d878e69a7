import { Hono } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { log } from "@bazaar/platform/log";
import { type AppEnv, requireUser } from "../auth.ts";
import { apiError, SessionEndedError } from "../errors.ts";
import type { LiveOrders, LiveUpdate } from "../live-orders.ts";
import { eventStreamsOpen } from "../metrics.ts";

/** Options of {@link eventRoutes}. */
export interface EventStreamOptions {
  /**
   * Milliseconds between `: ping` comments. They keep the stream under Bun's idle timeout (60 s,
   * platform http.ts) and proxies' ones, and check that the session still exists.
   */
  pingMs?: number;
  /** A stream ends after this long and the browser reconnects (with Last-Event-ID): spreads streams over replicas after a deploy. */
  maxStreamMs?: number;
  /** Updates waiting to be written before a stream that does not keep up is closed. */
  maxBacklog?: number;
  /** Streams one session may hold open at once (default 8: a few tabs); more are refused with a 429. */
  maxPerSession?: number;
  /** Streams this process holds open at once (default 1000); more are refused with a 429. */
  maxOpen?: number;
}

/** Open streams, counted per session and in all, so that neither one browser nor everyone together can open them without end. */
class StreamQuota {
  private open = 0;
  private readonly perSession = new Map<string, number>();

  constructor(
    private readonly maxPerSession: number,
    private readonly maxOpen: number,
  ) {}

  /** Takes a place for a stream of `session`: a release to call when it ends, or the message of a refusal. */
  take(session: string): { release: () => void } | { refused: string } {
    const mine = this.perSession.get(session) ?? 0;
    if (mine >= this.maxPerSession) {
      return { refused: `This session already has ${this.maxPerSession} live-update streams open, the most it may; close another tab of the shop first.` };
    }
    if (this.open >= this.maxOpen) return { refused: "The shop has as many live-update streams open as it can serve; please try again in a moment." };
    this.open++;
    this.perSession.set(session, mine + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.open--;
      const left = (this.perSession.get(session) ?? 1) - 1;
      if (left > 0) this.perSession.set(session, left);
      else this.perSession.delete(session);
    };
    return { release };
  }
}

/**
 * Ends every open stream once the process stops serving: Bun's server.stop() waits for open
 * responses, so a stream left open would hold up shutdown; closed, the browser reconnects (to
 * another replica) with its Last-Event-ID. Watches only while streams are open.
 */
class ShutdownWatch {
  private readonly closers = new Set<() => void>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly isServing: () => boolean) {}

  add(close: () => void): () => void {
    this.closers.add(close);
    this.timer ??= setInterval(() => {
      if (this.isServing()) return;
      for (const c of this.closers) c();
    }, 250);
    return () => {
      this.closers.delete(close);
      if (this.closers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }
}

/**
 * GET /api/events: the signed-in user's order updates as server-sent events — `event: order`,
 * `data: OrderView`, an `id:` per update — and, on a reconnect with Last-Event-ID, the updates
 * missed meanwhile (kept a few minutes; see LiveOrders).
 */
export function eventRoutes(live: LiveOrders, isServing: () => boolean, options: EventStreamOptions = {}) {
  const pingMs = options.pingMs ?? 15_000;
  const maxStreamMs = options.maxStreamMs ?? 30 * 60_000;
  const maxBacklog = options.maxBacklog ?? 200;
  const shutdown = new ShutdownWatch(isServing);
  const quota = new StreamQuota(options.maxPerSession ?? 8, options.maxOpen ?? 1000);

  return new Hono<AppEnv>().use(requireUser).get("/", (c) => {
    const userId = c.var.user.id;
    const session = c.var.currentSession;
    const sessions = c.var.sessions;
    const auth = c.var.auth;
    // EventSource sends the header; the query parameter is for clients that cannot set headers.
    const lastEventId = c.req.header("last-event-id") ?? c.req.query("lastEventId");
    c.header("cache-control", "no-store");
    const place = quota.take(session.key);
    if ("refused" in place) {
      c.header("retry-after", "30");
      return apiError(c, 429, "too_many_streams", place.refused);
    }
    // Tells nginx-like proxies not to buffer the stream.
    c.header("x-accel-buffering", "no");

    return streamSSE(c, async (stream) => {
      try {
        await followUpdates(stream);
      } finally {
        place.release();
      }
    });

    async function followUpdates(stream: SSEStreamingApi): Promise<void> {
      if (!isServing()) {
        // Shutting down: not a 503, which would make EventSource give up, but "come back soon".
        await stream.write("retry: 1000\n\n");
        return;
      }
      const ended = Promise.withResolvers<void>();
      let open = true;
      const close = () => {
        open = false;
        ended.resolve();
      };
      stream.onAbort(close);
      const unwatch = shutdown.add(close);
      eventStreamsOpen.inc();

      // One write at a time, in order: updates, replays and pings share this chain.
      let chain = Promise.resolve();
      let backlog = 0;
      const enqueue = (write: () => Promise<void>) => {
        if (!open) return;
        if (++backlog > maxBacklog) {
          log.warn("closing an event stream that does not keep up", { userId, backlog });
          close();
          return;
        }
        chain = chain
          .then(() => (open ? write() : undefined))
          .catch((err: unknown) => {
            if (err instanceof SessionEndedError) close();
            else log.warn("could not send an order update", { userId, err: (err as Error).message });
          })
          .finally(() => backlog--);
      };
      const send = (update: LiveUpdate) =>
        enqueue(async () => {
          const view = await live.view(update, await auth());
          if (open) await stream.writeSSE({ event: "order", id: update.id, data: JSON.stringify(view) });
        });

      const { missed, unsubscribe } = live.subscribe(userId, { deliver: send }, lastEventId);
      const ping = setInterval(
        () =>
          enqueue(async () => {
            // Signed out (on any replica) or expired: the stream ends, and EventSource's reconnect gets a 401.
            if (!(await sessions.exists(session).catch(() => true))) return close();
            await stream.write(": ping\n\n");
          }),
        pingMs,
      );
      const lifetime = setTimeout(close, maxStreamMs);
      try {
        // First bytes at once (the browser knows the stream is open), and how soon to reconnect.
        await stream.write("retry: 3000\n\n");
        for (const update of missed) send(update);
        await ended.promise;
      } finally {
        clearInterval(ping);
        clearTimeout(lifetime);
        unwatch();
        unsubscribe();
        eventStreamsOpen.dec();
      }
    }
  });
}
