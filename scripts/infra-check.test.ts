import { expect, test } from "bun:test";
import { freePort, testEnv } from "@bazaar/testkit/fixtures";
import { checkInfrastructure } from "./infra-check.ts";

const urls = { postgres: testEnv.POSTGRES_URL, redis: testEnv.REDIS_URL, amqp: testEnv.AMQP_URL };
const redisPort = new URL(urls.redis).port || "6379";
const amqpPort = new URL(urls.amqp).port || "5672";

test("the machine's Postgres, Redis and RabbitMQ pass the dev runner's check", async () => {
  expect((await checkInfrastructure(urls)).map((r) => [r.name, r.ok, r.problem])).toEqual([
    ["Postgres", true, undefined],
    ["Redis", true, undefined],
    ["RabbitMQ", true, undefined],
  ]);
});

test("nothing listening is named with how to start it; the wrong server on a port is told apart from the right one", async () => {
  const nothing = `redis://127.0.0.1:${freePort()}`;
  const swapped = await checkInfrastructure({ ...urls, redis: `redis://127.0.0.1:${amqpPort}`, amqp: `amqp://guest:guest@127.0.0.1:${redisPort}` });
  expect(swapped.find((r) => r.name === "Redis")?.problem).toContain("not Redis");
  // Redis waits for a line end the AMQP header never sends: no answer, not a pass.
  expect(swapped.find((r) => r.name === "RabbitMQ")?.ok).toBe(false);
  const down = (await checkInfrastructure({ ...urls, redis: nothing })).find((r) => r.name === "Redis");
  expect(down?.ok).toBe(false);
  expect(down?.problem).toContain("cannot connect");
  expect(down?.problem).toContain("redis-server --daemonize yes");
});

test("a Redis that wants a password and is given a wrong one is refused with Redis's own words", async () => {
  const wrong = new URL(urls.redis);
  wrong.password = "not-the-password";
  const result = (await checkInfrastructure({ ...urls, redis: wrong.toString() })).find((r) => r.name === "Redis");
  // The machine's Redis has no password: AUTH with one is an error reply, which the check reports.
  expect(result?.ok).toBe(false);
  expect(result?.problem).toMatch(/Redis refused: .*(AUTH|password)/i);
});
