import { describe, expect, test } from "bun:test";
import { repoRoot } from "@bazaar/testkit/fixtures";
import { buildWeb } from "../src/web.ts";

// The web UI imports only types from the BFF's server code (its typed API client): none of
// the server may reach the browser's bundle.
describe("the web UI's bundle", () => {
  test("is built from bff/web/src, hono's client and the platform's dependency-free same-origin check only, nothing of the server", async () => {
    const { modules, assets } = await buildWeb();
    const webSource = `${repoRoot}/bff/web/src/`;
    const honoClient = /\/node_modules\/(?:\.bun\/hono@[^/]+\/node_modules\/)?hono\/dist\/(?:client|utils)\//;
    const shared = [`${repoRoot}/platform/src/same-origin.ts`];
    expect(modules).toContain(`${webSource}api.ts`);
    expect(modules.filter((m) => !m.startsWith(webSource) && !honoClient.test(m) && !shared.includes(m))).toEqual([]);
    expect([...assets.keys()].filter((k) => k.endsWith(".js"))).toHaveLength(1);
  }, 30_000);
});
