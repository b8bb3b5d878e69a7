import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import { hc } from "hono/client";
import { launchProcess, type LaunchedProcess } from "@bazaar/testkit/fixtures";
import { ApiError, read, withSignal } from "../web/src/api.ts";
import type { ApiRoutes } from "../src/api-routes.ts";
import { createApp } from "../src/app.ts";
import { type CatalogClient, createCatalogClient } from "../src/upstreams/catalog.ts";

// The web UI's client, typed from ApiRoutes, against the BFF app (app.request as its fetch)
// and a real catalog process: the typed paths reach the routes they name, answers arrive as
// typed JSON and error answers as ApiError with the API's code and fields.
let catalogProcess: LaunchedProcess;
let catalog: CatalogClient;
let app: Hono;
let client: ReturnType<typeof hc<ApiRoutes>>;

beforeAll(async () => {
  catalogProcess = await launchProcess("catalog");
  catalog = createCatalogClient(catalogProcess.grpcAddress, 2_000);
  app = createApp({ upstreams: { catalog } });
  client = hc<ApiRoutes>("http://bff.test/api", { fetch: (input: RequestInfo | URL, init?: RequestInit) => app.request(input, init) });
}, 60_000);

afterAll(async () => {
  catalog?.close();
  await catalogProcess?.cleanup();
}, 60_000);

describe("the web UI's typed client", () => {
  test("reads a page of products with the query it was given, and one product by its id", async () => {
    const page = await read(client.products.$get({ query: { pageSize: "3", category: "coffee-tea" } }));
    expect(page.products).toHaveLength(3);
    expect(page.products.every((p) => p.categoryId === "coffee-tea")).toBe(true);
    expect(page.nextPageToken).toBeString();

    const first = page.products[0]!;
    const detail = await read(client.products[":id"].$get({ param: { id: first.id } }));
    expect(detail.product).toEqual(first);
  });

  test("an invalid query is an ApiError naming the field", async () => {
    const failure = await read(client.products.$get({ query: { pageSize: "0" } })).catch((err: unknown) => err);
    // The route's types reach the client: `bun run typecheck` fails unless this is an error (query values are text).
    // @ts-expect-error pageSize must be sent as text
    const untyped = await read(client.products.$get({ query: { pageSize: 0 } })).catch((err: unknown) => err);
    expect(untyped).toMatchObject({ status: 400, fields: { pageSize: "must be at least 1" } });
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure).toMatchObject({ status: 400, code: "invalid_request", fields: { pageSize: "must be at least 1" } });
  });

  test("an answer without the right session is an ApiError with the API's code and message", async () => {
    const failure = await read(client.cart.$get()).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure).toMatchObject({ status: 401, code: "unauthenticated" });
    expect((failure as ApiError).message).not.toBe("");
  });

  test("a change needs the session's CSRF token; its 204 reads as nothing", async () => {
    const refused = await read(client.auth.signout.$post()).catch((err: unknown) => err);
    expect(refused).toMatchObject({ status: 403, code: "csrf" });
    const { user, csrfToken } = await read(client.session.$get());
    expect(user).toBeNull();
    const headers = { cookie: `bazaar_csrf=${csrfToken}`, "x-csrf-token": csrfToken };
    expect(await read(client.auth.signout.$post(undefined, { headers }))).toBeUndefined();
  });

  test("an answer whose body is cut off by navigating away rejects as aborted, not as an empty answer", async () => {
    // A server that sends the headers and the start of the JSON, then nothing more.
    const server = Bun.serve({
      port: 0,
      fetch: () =>
        new Response(new ReadableStream({ start: (body) => body.enqueue(new TextEncoder().encode('{"products":')) }), {
          headers: { "content-type": "application/json" },
        }),
    });
    try {
      const navigation = new AbortController();
      const cutOff = hc<ApiRoutes>(new URL("/api", server.url).href);
      const answer = cutOff.products.$get({ query: {} }, withSignal(navigation.signal));
      await answer;
      const reading = read(answer);
      navigation.abort();
      expect(((await reading.catch((err: unknown) => err)) as Error).name).toBe("AbortError");
    } finally {
      await server.stop(true);
    }
  });
});
