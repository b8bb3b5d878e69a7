/**
 * Moves a durable consumer's dead-lettered messages back to its queue, once what made them fail
 * is fixed: `bun run dlq:replay <queue> [--limit N] [--dry-run]`, e.g.
 * `bun run dlq:replay cart.order-confirmed --dry-run` lists what `cart.order-confirmed.dlq`
 * holds, and without --dry-run moves it. AMQP_URL names the broker and vhost.
 */
import { parseArgs } from "node:util";
import { replayDeadLetters } from "@bazaar/platform/messaging/dlq-replay";
import { deadLetterQueueName } from "@bazaar/platform/messaging/redelivery";
import { dlqReplayEnv } from "./dlq-replay-env.ts";

const usage = "usage: bun run dlq:replay <queue> [--limit N] [--dry-run]   e.g. bun run dlq:replay cart.order-confirmed --dry-run\n";

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}`);
  process.exit(2);
}

const args = (() => {
  try {
    return parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { limit: { type: "string" }, "dry-run": { type: "boolean" } } });
  } catch (err) {
    return fail((err as Error).message);
  }
})();
const [queue, ...extra] = args.positionals;
if (!queue || extra.length > 0) fail(queue ? `one queue at a time, got ${args.positionals.join(" ")}` : "name the consumer's queue (not its .dlq)");
if (queue.endsWith(".dlq")) fail(`name the consumer's queue, without .dlq: ${queue.slice(0, -4)}`);
const limit = args.values.limit === undefined ? undefined : Number(args.values.limit);
if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) fail(`--limit must be a whole number of at least 1, got ${args.values.limit}`);
const dryRun = args.values["dry-run"] === true;

try {
  const moved = await replayDeadLetters(dlqReplayEnv.AMQP_URL, queue, { limit, dryRun });
  for (const m of moved) {
    const how = `${m.attempts} attempt${m.attempts === 1 ? "" : "s"}${m.deathReason ? `, ${m.deathReason}` : ""}`;
    process.stdout.write(`${dryRun ? "would move" : "moved"} ${m.messageId ?? "(no message id)"} ${m.routingKey} (${how})\n`);
  }
  const dlq = deadLetterQueueName(queue);
  process.stdout.write(
    dryRun ? `${moved.length} message(s) in ${dlq} would move to ${queue}; nothing was moved\n` : `moved ${moved.length} message(s) from ${dlq} to ${queue}\n`,
  );
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
