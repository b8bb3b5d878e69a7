/**
 * `bun scripts/order-cost.ts [--orders 300] [--warmup 60] [--concurrency 8]`: what one order
 * costs, as counts and CPU time rather than throughput (which depends on whoever else loads
 * the machine). Starts a test platform (every service its own process, databases, vhost and
 * Redis prefix), places warm-up orders, then `--orders` more from `--concurrency` buyers in a
 * closed loop, and prints per confirmed order: CPU ms of each service, of the Postgres backends
 * of the platform's databases, RabbitMQ and Redis; SQL statements sent; Postgres commits and
 * rows; RPCs served; messages published and consumed. Cleans up everything it started.
 *
 * `--profile orders,payments` runs those services under Bun's CPU profiler (BUN_OPTIONS
 * --cpu-prof-md), which writes a Markdown profile to test-artifacts/profiles/ as each exits.
 */
import { type GrpcServiceName, serviceCatalog } from "@bazaar/platform/service-catalog";
import { OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { mkdirSync } from "node:fs";
import { bearer, type BearerAuth, registerAndLogin, repoRoot, testEnv } from "@bazaar/testkit/fixtures";
import { startTestPlatform, stockedProducts, type TestPlatform } from "@bazaar/testkit/test-platform";
import { flags, numberFlag } from "./bench/common.ts";
import { costBetween, costProbe } from "./bench/cost.ts";

const args = flags({ orders: "300", warmup: "60", concurrency: "8", timeout: "240", profile: "" });
const counts = {
  orders: numberFlag("orders", args.orders),
  warmup: numberFlag("warmup", args.warmup),
  concurrency: numberFlag("concurrency", args.concurrency),
};
const say = (text: string) => process.stdout.write(`order-cost │ ${text}\n`);

let platform: TestPlatform | undefined;
const watchdog = setTimeout(() => {
  say(`took longer than ${args.timeout} s; cleaning up…`);
  void (platform?.cleanup() ?? Promise.resolve()).finally(() => process.exit(1));
}, numberFlag("timeout", args.timeout) * 1000);

const card = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "123" };

try {
  const profiled = args.profile.split(",").filter(Boolean);
  const profileDir = `${repoRoot}/test-artifacts/profiles`;
  if (profiled.length) mkdirSync(profileDir, { recursive: true });
  platform = await startTestPlatform(Object.fromEntries(profiled.map((name) => [name, { BUN_OPTIONS: `--cpu-prof-md --cpu-prof-dir=${profileDir}` }])));
  const p = platform;
  const { clients } = p;
  const admin = bearer((await clients.identity.login({ email: "admin@bazaar.local", password: "bazaar-admin" })).tokens!.accessToken);
  const products = await stockedProducts(clients, 4, 1);
  for (const { id } of products) await clients.inventory.adjustStock({ productId: id, delta: 100_000, reason: "order-cost" }, admin);
  const buyers: BearerAuth[] = [];
  for (let i = 0; i < counts.concurrency; i++) buyers.push(bearer((await registerAndLogin(clients.identity)).tokens.accessToken));

  let placed = 0;
  const placeOrders = async (n: number) => {
    let next = 0;
    const buyer = async (auth: BearerAuth) => {
      while (next < n) {
        const i = next++;
        const { paymentMethod } = await clients.payments.createPaymentMethod({ card }, auth);
        const { order } = await clients.orders.placeOrder(
          {
            idempotencyKey: `order-cost-${placed++}-${Math.random()}`,
            lines: [{ productId: products[i % products.length]!.id, quantity: 1 }],
            paymentMethodToken: paymentMethod!.token,
          },
          auth,
        );
        if (order?.status !== OrderStatus.CONFIRMED) throw new Error(`order ${order?.id} ended ${OrderStatus[order?.status ?? 0]}: ${order?.cancelReason}`);
      }
    };
    await Promise.all(buyers.map(buyer));
  };

  const names = serviceCatalog.flatMap((e) => ("grpcPort" in e ? [e.name as GrpcServiceName] : []));
  const databases: string[] = [];
  for (const name of names) {
    const rows = await p.query<{ db: string }>(name, "select current_database() as db").catch(() => []);
    if (rows[0]) databases.push(rows[0].db);
  }
  const probe = costProbe({
    processes: Object.fromEntries(names.map((name) => [name, { pid: p.process(name).proc.pid, metricsUrl: `${p.httpUrl(name)}/metrics` }])),
    databases,
    postgresUrl: testEnv.POSTGRES_URL,
  });
  // Settles the events the orders left behind (notifications, cart) and Postgres's statistics,
  // which backends report at most once a second.
  const settle = () => Bun.sleep(1_500);
  try {
    say(`${counts.warmup} warm-up orders…`);
    await placeOrders(counts.warmup);
    await settle();
    const before = await probe.snapshot();
    say(`${counts.orders} orders from ${counts.concurrency} buyers…`);
    const t0 = performance.now();
    await placeOrders(counts.orders);
    const seconds = (performance.now() - t0) / 1000;
    await settle();
    const cost = costBetween(before, await probe.snapshot(), counts.orders);
    say(`${counts.orders} orders confirmed in ${seconds.toFixed(1)} s; machine ${cost.machineBusyPct}% busy over the window (2 s of settling included)`);
    const cpuTotal = Object.values(cost.cpuMs).reduce((a, b) => a + b, 0);
    process.stdout.write(
      `${JSON.stringify({ ...cost, servicesCpuMs: Math.round(cpuTotal * 100) / 100, backendsPlusServicesMs: Math.round((cpuTotal + cost.postgresBackendsMs) * 100) / 100 }, null, 2)}\n`,
    );
  } finally {
    await probe.close();
  }
} catch (err) {
  say(`FAILED: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  await platform?.cleanup();
  clearTimeout(watchdog);
}
