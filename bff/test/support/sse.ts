/** One server-sent event as a browser's EventSource parses it. */
export interface SseMessage {
  event: string;
  id: string | undefined;
  data: string;
}

/**
 * Reads a text/event-stream body: messages (comments such as `: ping` are kept in `comments`)
 * as they arrive, with a deadline on each wait.
 */
export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";
  private ended = false;
  /** A read that outlived a wait: the next wait takes it over, so no chunk is lost. */
  private pending: ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]> | undefined;
  readonly comments: string[] = [];

  constructor(res: Response) {
    if (!res.body) throw new Error("the response has no body");
    this.reader = res.body.getReader();
  }

  /** Whether the server ended the stream. */
  get done(): boolean {
    return this.ended;
  }

  /** The next message (skipping comments and retry-only blocks); undefined when the stream ends. */
  async next(timeoutMs = 10_000): Promise<SseMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const block = this.takeBlock();
      if (block !== undefined) {
        const message = this.parse(block);
        if (message) return message;
        continue;
      }
      if (this.ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no server-sent event within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.pending ??= this.reader.read();
      const chunk = await Promise.race([this.pending, new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), left)))]).finally(() =>
        clearTimeout(timer),
      );
      if (chunk === "timeout") throw new Error(`no server-sent event within ${timeoutMs} ms`);
      this.pending = undefined;
      if (chunk.done) this.ended = true;
      else this.buffer += this.decoder.decode(chunk.value, { stream: true });
    }
  }

  /** Messages until `stop` says so (inclusive). */
  async until(stop: (m: SseMessage) => boolean, timeoutMs = 20_000): Promise<SseMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const seen: SseMessage[] = [];
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (!m) throw new Error(`the stream ended after ${seen.length} messages`);
      seen.push(m);
      if (stop(m)) return seen;
    }
  }

  /** Waits until the server ends the stream (reading and dropping what comes). */
  async waitForEnd(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error("the stream did not end");
      await this.next(Math.max(1, deadline - Date.now())).catch(() => undefined);
    }
  }

  /** Disconnects, as a closed browser tab does. */
  async close(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }

  private takeBlock(): string | undefined {
    const at = this.buffer.indexOf("\n\n");
    if (at < 0) return undefined;
    const block = this.buffer.slice(0, at);
    this.buffer = this.buffer.slice(at + 2);
    return block;
  }

  private parse(block: string): SseMessage | undefined {
    let event = "message";
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
      else if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("id:")) id = line.slice(3).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    return data.length ? { event, id, data: data.join("\n") } : undefined;
  }
}
