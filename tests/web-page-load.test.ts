/**
 * The web UI's page-loading helpers (bff/web/src/page-load.ts) in headless Chromium: the
 * module is bundled for the browser as the BFF bundles the UI, served to a blank page, and
 * driven with data sources that answer, fail, or are aborted as the API would.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "@bazaar/testkit/chromium";
import { repoRoot } from "@bazaar/testkit/fixtures";
import type * as PageLoad from "../bff/web/src/page-load.ts";

const ORIGIN = "http://page-load.test";

let browser: Browser | undefined;
let moduleCode = "";

beforeAll(async () => {
  const built = await Bun.build({ entrypoints: [`${repoRoot}/bff/web/src/page-load.ts`], target: "browser", format: "esm" });
  if (!built.success) throw new AggregateError(built.logs, "page-load.ts does not build");
  moduleCode = await built.outputs[0]!.text();
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
});

/** A blank page like the UI's shell (#main), with the module at /page-load.js. */
async function blankPage(): Promise<Page> {
  const page = await browser!.newPage();
  await page.route(`${ORIGIN}/**`, (route) =>
    new URL(route.request().url()).pathname === "/page-load.js"
      ? route.fulfill({ contentType: "text/javascript", body: moduleCode })
      : route.fulfill({ contentType: "text/html", body: '<!doctype html><main id="main"></main>' }),
  );
  await page.goto(`${ORIGIN}/`);
  return page;
}

/** Waits in the page until `done()` holds, for at most 2 s. */
type Until = (what: string, done: () => boolean) => Promise<void>;

/** Runs `scenario` in the page with the module, a root element and {@link Until}; answers what it answers. */
async function inBrowser<T>(scenario: (m: typeof PageLoad, root: HTMLElement, until: Until) => Promise<T>): Promise<T> {
  const page = await blankPage();
  try {
    return await page.evaluate(
      async ([code]) => {
        const m = (await import("/page-load.js" as string)) as typeof PageLoad;
        const root = document.getElementById("main")!;
        const until = async (what: string, done: () => boolean) => {
          const deadline = Date.now() + 2_000;
          while (!done()) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        };
        // The scenario arrives as source text: it runs in the browser, not in Bun.
        return new Function("m", "root", "until", `return (${code})(m, root, until);`)(m, root, until);
      },
      [scenario.toString()] as const,
    );
  } finally {
    await page.close();
  }
}

describe("load", () => {
  test("draws the data in place of the placeholder", async () => {
    const html = await inBrowser(async (m, root) => {
      const spinner = root.appendChild(document.createElement("div"));
      spinner.textContent = "Loading…";
      await m.load({
        fetch: async () => "the data",
        place: m.instead(spinner),
        render: (data, place) => place(Object.assign(document.createElement("p"), { textContent: data })),
      });
      return root.innerHTML;
    });
    expect(html).toBe("<p>the data</p>");
  });

  test("a failure shows the error with Try again, which loads again", async () => {
    const seen = await inBrowser(async (m, root, until) => {
      let calls = 0;
      const run = () =>
        m.load({
          fetch: async () => {
            calls++;
            if (calls === 1) throw new Error("connection reset");
            return "the data";
          },
          place: m.inside(root),
          render: (data, place) => place(Object.assign(document.createElement("p"), { textContent: data })),
          retry: () => void run(),
        });
      await run();
      const error = root.querySelector("[data-testid=error]")?.textContent;
      (root.querySelector("[data-testid=retry]") as HTMLButtonElement).click();
      await until("the second load", () => calls === 2 && !root.querySelector("[data-testid=error]"));
      return { error, after: root.innerHTML, calls };
    });
    expect(seen.error).toBe("Something went wrong. Please try again.Try again");
    expect(seen.after).toBe("<p>the data</p>");
    expect(seen.calls).toBe(2);
  });

  test("a failure the page expects is drawn by the page, not as an error", async () => {
    const html = await inBrowser(async (m, root) => {
      await m.load({
        fetch: async () => {
          throw new Error("no such product");
        },
        place: m.inside(root),
        explain: (err) => Object.assign(document.createElement("h1"), { textContent: `Not found (${(err as Error).message})` }),
        render: () => {
          throw new Error("render must not run");
        },
      });
      return root.innerHTML;
    });
    expect(html).toBe("<h1>Not found (no such product)</h1>");
  });

  test("navigating away (the fetch aborted) draws nothing", async () => {
    const html = await inBrowser(async (m, root) => {
      root.innerHTML = "<div>Loading…</div>";
      const controller = new AbortController();
      const pending = m.load({
        fetch: () => fetch("/never-answered", { signal: controller.signal }).then(() => "the data"),
        place: m.inside(root),
        render: (data, place) => place(document.createTextNode(data)),
      });
      controller.abort();
      await pending;
      return root.innerHTML;
    });
    expect(html).toBe("<div>Loading…</div>");
  });
});

describe("pager", () => {
  test("Show more loads the next page; a failed page offers Try again for that page", async () => {
    const seen = await inBrowser(async (m, root, until) => {
      const pages: Record<string, { items: string[]; nextPageToken: string | null }> = {
        first: { items: ["a", "b"], nextPageToken: "p2" },
        p2: { items: ["c"], nextPageToken: null },
      };
      let failSecond = true;
      const busy: boolean[] = [];
      const list = root.appendChild(document.createElement("ul"));
      const more = root.appendChild(document.createElement("div"));
      const state = () => ({
        items: [...list.children].map((li) => li.textContent),
        more: more.querySelector("[data-testid]")?.getAttribute("data-testid") ?? null,
      });
      const paged = m.pager({
        more,
        busy: (b) => busy.push(b),
        fetch: async (token) => {
          if (token === "p2" && failSecond) {
            failSecond = false;
            throw new Error("timeout");
          }
          return pages[token ?? "first"]!;
        },
        render: (page) => {
          for (const item of page.items) list.append(Object.assign(document.createElement("li"), { textContent: item }));
        },
      });
      await paged.load();
      const afterFirst = state();
      (more.querySelector("[data-testid=show-more]") as HTMLButtonElement).click();
      await until("the failure", () => more.querySelector("[data-testid=error]") !== null);
      const afterFailure = state();
      (more.querySelector("[data-testid=retry]") as HTMLButtonElement).click();
      await until("the second page", () => list.children.length === 3);
      return { afterFirst, afterFailure, afterRetry: state(), busy };
    });
    expect(seen.afterFirst).toEqual({ items: ["a", "b"], more: "show-more" });
    expect(seen.afterFailure).toEqual({ items: ["a", "b"], more: "error" });
    expect(seen.afterRetry).toEqual({ items: ["a", "b", "c"], more: null });
    expect(seen.busy).toEqual([true, false, true, false, true, false]);
  });

  test("a failure goes where `failurePlace` says, after `failed`; a list that has ended gets no Show more", async () => {
    const seen = await inBrowser(async (m, root) => {
      const body = root.appendChild(document.createElement("section"));
      const more = root.appendChild(document.createElement("div"));
      let fail = true;
      const failedFor: string[] = [];
      const paged = m.pager({
        more,
        fetch: async () => {
          if (fail) throw new Error("down");
          return { nextPageToken: "p2" };
        },
        failed: (token) => {
          failedFor.push(token ?? "the first page");
        },
        failurePlace: (token) => m.inside(token ? more : body),
        ended: () => body.textContent === "Nothing here",
        render: () => {
          body.textContent = "Nothing here";
        },
      });
      await paged.load();
      const failed = { body: body.querySelector("[data-testid=error]") !== null, more: more.innerHTML, failedFor };
      fail = false;
      await paged.load();
      return { failed, body: body.innerHTML, more: more.innerHTML };
    });
    expect(seen.failed).toEqual({ body: true, more: "", failedFor: ["the first page"] });
    expect(seen.body).toBe("Nothing here");
    expect(seen.more).toBe("");
  });
});
