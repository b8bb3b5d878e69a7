/**
 * Orders load generator: registers its own buyers, then places orders (one line, one unit of a
 * product picked in turn, the test card that pays, tokenized with PaymentsService first, as the
 * BFF's checkout does) through OrdersService/PlaceOrder, which answers once the saga is final
 * (reserve → charge → commit). A call counts only if its order came back CONFIRMED. Two modes:
 *
 *   --mode closed --concurrency 16   as many orders as the platform can confirm (max throughput)
 *   --mode open --rate 40            a fixed rate, for latency at a load the platform can carry
 *
 *   bun scripts/bench/orders-load.ts --identity 127.0.0.1:50051 --orders 127.0.0.1:50055 --payments 127.0.0.1:50056 --products id1,id2 …
 */
import { createClient } from "@bazaar/platform/grpc/client";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { OrderStatus } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { OrdersService } from "@bazaar/proto/bazaar/orders/v1/orders_pb";
import { PaymentsService } from "@bazaar/proto/bazaar/payments/v1/payments_pb";
import { closedLoop, flags, numberFlag, openLoop, printResult } from "./common.ts";

const args = flags({
  identity: "",
  orders: "",
  payments: "",
  products: "",
  mode: "closed",
  concurrency: "16",
  rate: "20",
  buyers: "16",
  warmup: "2",
  duration: "8",
});
for (const name of ["identity", "orders", "payments"] as const) {
  if (!/^127\.0\.0\.1:\d+$/.test(args[name])) {
    process.stderr.write(`--${name} must be 127.0.0.1:<port>, got ${JSON.stringify(args[name])}\n`);
    process.exit(2);
  }
}
const products = args.products.split(",").filter(Boolean);
if (products.length === 0) {
  process.stderr.write("--products (comma-separated product ids) is required\n");
  process.exit(2);
}

const identity = createClient(IdentityService, args.identity, { defaultTimeoutMs: 10_000 });
const orders = createClient(OrdersService, args.orders, { defaultTimeoutMs: 15_000 });
const payments = createClient(PaymentsService, args.payments, { defaultTimeoutMs: 10_000 });
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const buyers: { metadata: { authorization: string } }[] = [];
for (let i = 0; i < numberFlag("buyers", args.buyers); i++) {
  const account = { email: `bench-${run}-${i}@example.com`, password: "bench-password-123" };
  // Register answers with nothing to sign in with (it must not tell a taken email from a free one).
  await identity.register({ ...account, displayName: `Bench ${i}` });
  const { tokens } = await identity.login(account);
  buyers.push({ metadata: { authorization: `Bearer ${tokens!.accessToken}` } });
}
const card = { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "123" };
let n = 0;
const placeOne = async () => {
  const i = n++;
  const buyer = buyers[i % buyers.length];
  const { paymentMethod } = await payments.createPaymentMethod({ card }, buyer);
  const { order } = await orders.placeOrder(
    { idempotencyKey: `bench-${run}-${i}`, lines: [{ productId: products[i % products.length]!, quantity: 1 }], paymentMethodToken: paymentMethod!.token },
    buyer,
  );
  if (order?.status !== OrderStatus.CONFIRMED) throw new Error(`order ${order?.id} ended ${OrderStatus[order?.status ?? 0]}: ${order?.cancelReason}`);
};

const common = {
  tool: "grpc-js PlaceOrder (scripts/bench/orders-load.ts)",
  warmupS: numberFlag("warmup", args.warmup),
  durationS: numberFlag("duration", args.duration),
  call: placeOne,
};
const result =
  args.mode === "open"
    ? await openLoop({ ...common, ratePerS: numberFlag("rate", args.rate) })
    : await closedLoop({ ...common, concurrency: numberFlag("concurrency", args.concurrency) });
identity.close();
orders.close();
payments.close();
printResult(result);
process.exit(0);
