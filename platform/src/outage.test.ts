import { describe, expect, test } from "bun:test";
import * as redis from "redis";
import { markPostgresOutage, markRedisOutage, unavailableDependency } from "./outage.ts";

describe("unavailableDependency", () => {
  // outage.ts tells node-redis's errors by class name (so that it need not import node-redis):
  // the names must be node-redis's own, which these real instances check.
  test("node-redis's connection errors are Redis outages", () => {
    for (const error of [
      new redis.ClientOfflineError(),
      new redis.ClientClosedError(),
      new redis.SocketClosedUnexpectedlyError(),
      new redis.ConnectionTimeoutError(),
      new redis.SocketTimeoutError(1_000),
    ]) {
      expect({ error: error.constructor.name, dependency: unavailableDependency(error) }).toEqual({ error: error.constructor.name, dependency: "Redis" });
    }
  });

  test("a Redis error reply means an outage only when Redis is refusing work (LOADING, OOM …), not for a bad command", () => {
    expect(unavailableDependency(new redis.SimpleError("LOADING Redis is loading the dataset in memory"))).toBe("Redis");
    expect(unavailableDependency(new redis.SimpleError("OOM command not allowed when used memory > 'maxmemory'."))).toBe("Redis");
    expect(unavailableDependency(new redis.SimpleError("WRONGTYPE Operation against a key holding the wrong kind of value"))).toBeUndefined();
    expect(unavailableDependency(new redis.ErrorReply("ERR unknown command"))).toBeUndefined();
  });

  test("a socket error of a Redis command, marked by connectRedis, is a Redis outage", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(unavailableDependency(reset)).toBeUndefined();
    markRedisOutage(reset);
    expect(unavailableDependency(reset)).toBe("Redis");
    const bug = new TypeError("x is undefined");
    markRedisOutage(bug);
    expect(unavailableDependency(bug)).toBeUndefined();
  });

  test("a Postgres error marked by the database layer is a Postgres outage, found through causes; other errors are none", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    markPostgresOutage(refused);
    expect(unavailableDependency(new Error("query failed", { cause: refused }))).toBe("Postgres");
    expect(unavailableDependency(new Error("a bug"))).toBeUndefined();
    expect(unavailableDependency(Object.assign(new Error("duplicate key"), { code: "23505" }))).toBeUndefined();
  });
});
