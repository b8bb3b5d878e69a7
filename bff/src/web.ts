import { resolve } from "node:path";
import { Hono } from "hono";
import { log } from "@bazaar/platform/log";
import { sameOriginPath } from "@bazaar/platform/same-origin";

const webRoot = new URL("../web", import.meta.url).pathname;

/** The built web UI: the page shell, and the bundled script and stylesheet by path. */
export interface WebBundle {
  indexHtml: string;
  assets: Map<string, { body: Uint8Array; type: string }>;
  /** The absolute paths of the source files bundled (what reaches the browser). */
  modules: string[];
}

/**
 * Bundles the web UI (bff/web/src/main.ts and the CSS it imports) with Bun's bundler, in
 * memory, when the BFF starts; output names carry a content hash so browsers may cache them
 * for good. Fails loudly if the UI does not build.
 */
export async function buildWeb(): Promise<WebBundle> {
  const started = performance.now();
  const result = await Bun.build({
    entrypoints: [`${webRoot}/src/main.ts`],
    target: "browser",
    minify: true,
    sourcemap: "none",
    metafile: true,
    naming: { entry: "[name]-[hash].[ext]", asset: "[name]-[hash].[ext]", chunk: "[name]-[hash].[ext]" },
  });
  if (!result.success) throw new AggregateError(result.logs, "the web UI does not build");
  const assets = new Map<string, { body: Uint8Array; type: string }>();
  let html = await Bun.file(`${webRoot}/index.html`).text();
  for (const output of result.outputs) {
    const name = output.path.replace(/^.*\//, "").replace(/^\.\//, "");
    assets.set(`/assets/${name}`, { body: new Uint8Array(await output.arrayBuffer()), type: output.type });
    if (name.endsWith(".js")) html = html.replace("/assets/main.js", `/assets/${name}`);
    if (name.endsWith(".css")) html = html.replace("/assets/main.css", `/assets/${name}`);
  }
  log.info("web UI built", { ms: Math.round(performance.now() - started), assets: [...assets.keys()] });
  // The metafile names inputs relative to the working directory.
  const modules = Object.keys(result.metafile?.inputs ?? {}).map((path) => resolve(path));
  return { indexHtml: html, assets, modules };
}

/** Serves the web UI: hashed assets, product images, and the page shell for every UI route. */
export function webRoutes(bundle: WebBundle) {
  return new Hono()
    .get("/assets/:file", (c) => {
      const asset = bundle.assets.get(c.req.path);
      if (!asset) return c.notFound();
      return c.body(asset.body as Uint8Array<ArrayBuffer>, 200, { "content-type": asset.type, "cache-control": "public, max-age=31536000, immutable" });
    })
    .get("/images/*", async (c) => {
      const path = decodeURIComponent(c.req.path);
      // Only plain file names under public/images: no "..", no hidden files.
      if (!/^\/images\/[\w-]+(?:\/[\w-]+)*\.(?:svg|png|jpg|webp)$/.test(path)) return c.notFound();
      const file = Bun.file(`${webRoot}/public${path}`);
      if (!(await file.exists())) return c.notFound();
      return new Response(file, { headers: { "cache-control": "public, max-age=86400", "content-type": file.type } });
    })
    .get("*", (c) => {
      // A `next` (where sign-in leads back to) that would leave the site is dropped here as
      // well as in the page, so no link the page draws from it can point elsewhere.
      const url = new URL(c.req.url);
      const next = url.searchParams.get("next");
      if (next !== null && sameOriginPath(next) !== next) {
        url.searchParams.delete("next");
        return c.redirect(url.pathname + url.search, 302);
      }
      return c.html(bundle.indexHtml);
    });
}
