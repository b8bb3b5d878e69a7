import { startService } from "@bazaar/platform/service";
import { createApp } from "./app.ts";
import { env } from "./env.ts";
import { createCatalogClient } from "./upstreams/catalog.ts";
import { buildWeb } from "./web.ts";

const host = startService("bff", env);
const catalog = createCatalogClient(env.CATALOG_ADDR, env.UPSTREAM_TIMEOUT_MS);
host.onShutdown("catalog client", async () => catalog.close());
host.useHttpApp(createApp({ upstreams: { catalog }, web: await buildWeb(), isHealthy: host.isServing }));
await host.listen();
