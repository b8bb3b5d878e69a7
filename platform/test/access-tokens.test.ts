/**
 * The chassis's access-token checks end to end: a real catalog process (the subject; any
 * service with an admin RPC would do) verifying tokens against a test issuer's JWKS, as every
 * service does against identity's. Each kind of bad token is refused with UNAUTHENTICATED and a
 * message naming what was wrong; a good one reaches the handler.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { createClient, type GrpcClient } from "@bazaar/platform/grpc/client";
import { bearer, rpcError } from "@bazaar/testkit/fixtures";
import type { TestIssuer } from "@bazaar/testkit/test-issuer";
import { TestScope } from "@bazaar/testkit/test-scope";
import { CatalogService } from "@bazaar/proto/bazaar/catalog/v1/catalog_pb";

const scope = new TestScope();
let issuer: TestIssuer;
let client: GrpcClient<typeof CatalogService>;

beforeAll(async () => {
  issuer = await scope.issuer();
  const catalog = await scope.launch("catalog", { JWKS_URL: issuer.jwksUrl, LOG_LEVEL: "warn" });
  client = scope.add(createClient(CatalogService, catalog.grpcAddress), (c) => c.close());
}, 60_000);

afterAll(() => scope.cleanup(), 60_000);

describe("access tokens", () => {
  const update = (token: string) => client.updateProduct({ product: { id: crypto.randomUUID(), name: "x" }, updateMask: { paths: ["name"] } }, bearer(token));
  const admin = { sub: crypto.randomUUID(), roles: ["admin"] };

  test("alg none is refused", async () => {
    const err = await rpcError(update(issuer.unsignedToken(admin)));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.message).toContain("algorithm");
  });

  test("a token signed by another key is refused", async () => {
    const err = await rpcError(update(await issuer.foreignToken(admin)));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.message).toContain("signature");
  });

  test("a wrong issuer or audience is refused", async () => {
    const wrongIssuer = await rpcError(update(await issuer.token({ ...admin, iss: "https://evil.example" })));
    expect(wrongIssuer.code).toBe(status.UNAUTHENTICATED);
    expect(wrongIssuer.message).toContain("iss");
    const wrongAudience = await rpcError(update(await issuer.token({ ...admin, aud: "someone-else" })));
    expect(wrongAudience.code).toBe(status.UNAUTHENTICATED);
    expect(wrongAudience.message).toContain("aud");
  });

  test("an expired token is refused", async () => {
    const err = await rpcError(update(await issuer.token(admin, { expiresInSeconds: -60 })));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.message).toContain("expired");
  });

  test("a malformed authorization header is refused", async () => {
    const err = await rpcError(client.updateProduct({ product: { id: crypto.randomUUID() } }, { metadata: { authorization: "Basic abc" } }));
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.message).toContain("Bearer");
  });

  test("a valid admin token passes the checks (the unknown product is then NOT_FOUND)", async () => {
    expect((await rpcError(update(await issuer.token(admin)))).code).toBe(status.NOT_FOUND);
  });
});
