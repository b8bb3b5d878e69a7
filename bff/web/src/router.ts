/**
 * The router: real URLs with the history API. Same-origin links are followed without a page
 * load; each page renders into a fresh root, so a page still loading when the person moves
 * on writes into a detached element and never over the next page; its AbortSignal fires too.
 */
import { h } from "./dom.ts";
import { sameOriginPath } from "@bazaar/platform/same-origin";
import { state } from "./state.ts";

export interface PageContext {
  /** Where the page draws itself. */
  root: HTMLElement;
  /** The route's captured path parts. */
  params: string[];
  query: URLSearchParams;
  /** Aborted when the person navigates away. */
  signal: AbortSignal;
}

export interface Route {
  path: RegExp;
  page: (ctx: PageContext) => Promise<void> | void;
  /** Signed-in people only: others are sent to sign in and brought back. */
  auth?: boolean;
}

const main = document.getElementById("main") as HTMLElement;
const announcer = h("div", { class: "visually-hidden", "aria-live": "polite", "aria-atomic": "true" });
document.body.append(announcer);

let routes: Route[] = [];
let inFlight: AbortController | undefined;
let pendingFlash: string | undefined;
let firstRender = true;

/** Shows `message` at the top of the next page drawn. */
export function flash(message: string): void {
  pendingFlash = message;
}

export interface NavigateOptions {
  replace?: boolean;
  /** Move focus to the page (default); false keeps it where it is (e.g. in the search box). */
  focus?: boolean;
}

export function navigate(url: string, { replace = false, focus = true }: NavigateOptions = {}): void {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  void render({ focus, scroll: !replace });
}

/**
 * Where to go back to after signing in: `next` resolved against this page's origin, as the
 * browser will resolve the link, and only if it stays on it (else the home page).
 */
export function safeNext(next: string | null): string {
  return (next && sameOriginPath(next, location.origin)) || "/";
}

export const here = (): string => location.pathname + location.search;

/** Sets the tab's title and tells screen readers which page they are on. */
export function setTitle(title: string): void {
  document.title = title ? `${title} · Bazaar` : "Bazaar";
  announcer.textContent = title || "Bazaar";
}

/** Re-draws the current URL (e.g. "Try again"). */
export function reload(): void {
  void render({ focus: false, scroll: false });
}

async function render({ focus, scroll }: { focus: boolean; scroll: boolean }): Promise<void> {
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  const path = location.pathname.replace(/\/+$/, "") || "/";
  let match: RegExpExecArray | null = null;
  const route = routes.find((r) => (match = r.path.exec(path)));
  if (route?.auth && !state.user) {
    navigate(`/signin?next=${encodeURIComponent(here())}`, { replace: true, focus });
    return;
  }
  const root = h("div", { class: "page" });
  if (pendingFlash) {
    root.append(h("p", { class: "flash", role: "status", "data-testid": "flash" }, pendingFlash));
    pendingFlash = undefined;
  }
  main.replaceChildren(root);
  if (scroll && !firstRender) window.scrollTo(0, 0);
  if (focus && !firstRender) main.focus({ preventScroll: true });
  firstRender = false;
  const ctx: PageContext = {
    root,
    params: ((match as RegExpExecArray | null) ?? []).slice(1).map((p) => decodeURIComponent(p ?? "")),
    query: new URLSearchParams(location.search),
    signal: controller.signal,
  };
  try {
    await (route ?? notFoundRoute).page(ctx);
  } catch (err) {
    if ((err as Error).name === "AbortError") return;
    throw err;
  }
}

const notFoundRoute: Route = {
  path: /$^/,
  page: ({ root }) => {
    setTitle("Page not found");
    root.append(
      h(
        "div",
        { class: "notice empty", "data-testid": "not-found" },
        h("h1", {}, "Page not found"),
        h("p", {}, "There is nothing at this address."),
        h("a", { href: "/", class: "button" }, "Back to the shop"),
      ),
    );
  },
};

/** Follows same-origin links in place, except downloads, new tabs and non-UI paths. */
function onClick(e: MouseEvent): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element | null)?.closest?.("a");
  if (!a?.href || a.target || a.hasAttribute("download") || a.dataset.native !== undefined) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || /^\/(api|assets|images)\//.test(url.pathname)) return;
  e.preventDefault();
  if (url.pathname + url.search === here() && !url.hash) {
    reload();
    return;
  }
  navigate(url.pathname + url.search + url.hash);
}

export function startRouter(table: Route[]): void {
  routes = table;
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", () => void render({ focus: true, scroll: false }));
  void render({ focus: false, scroll: false });
}
