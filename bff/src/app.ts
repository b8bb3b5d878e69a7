import type { Hono } from "hono";
import { createHttpApp } from "@bazaar/platform/http";
import { errorResponse } from "./errors.ts";
import { categoryRoutes, productRoutes } from "./routes/products.ts";
import type { CatalogClient } from "./upstreams/catalog.ts";
import type { WebBundle } from "./web.ts";
import { webRoutes } from "./web.ts";

/** What the BFF talks to. */
export interface Upstreams {
  catalog: CatalogClient;
}

/** Options of {@link createApp}. */
export interface AppOptions {
  upstreams: Upstreams;
  /** The built web UI; omitted in API-only tests. */
  web?: WebBundle;
  /** Whether the process is serving (false while it shuts down). */
  isHealthy?: () => boolean;
}

/**
 * The BFF as a Hono app: /healthz and /metrics, the JSON API under /api, and the web UI.
 * Tests build it with their own upstreams and call it with `app.request()`.
 */
export function createApp({ upstreams, web, isHealthy = () => true }: AppOptions): Hono {
  const app = createHttpApp(isHealthy);
  app.route("/api/products", productRoutes(upstreams.catalog));
  app.route("/api/categories", categoryRoutes(upstreams.catalog));
  app.all("/api/*", (c) => c.json({ error: { code: "not_found", message: `no API route ${c.req.method} ${c.req.path}` } }, 404));
  if (web) app.route("/", webRoutes(web));
  app.onError(errorResponse);
  return app;
}
