/** What a test browser talks to: a Hono app (`app.request`) or a BFF over HTTP ({@link overHttp}). */
export interface RequestTarget {
  request(path: string, init: RequestInit): Response | Promise<Response>;
}

/** A BFF (or the gateway in front of one) at a real address; every request bounded to 15 s. */
export function overHttp(baseUrl: string): RequestTarget {
  return { request: (path, init) => fetch(new URL(path, baseUrl), { ...init, redirect: "manual", signal: AbortSignal.timeout(15_000) }) };
}

/** A JSON error body of the BFF. */
export interface ApiErrorBody {
  error: { code: string; message: string; fields?: Record<string, string> };
}

/**
 * A browser, as far as the BFF can tell: a cookie jar that follows Set-Cookie (including
 * deletions), and the CSRF double-submit the web UI does — the `bazaar_csrf` cookie echoed
 * in `x-csrf-token` on unsafe requests — unless a test asks it not to.
 */
export class TestBrowser {
  constructor(
    public app: RequestTarget,
    readonly cookies = new Map<string, string>(),
  ) {}

  /** The same browser (same cookies) talking to another BFF replica. */
  on(app: RequestTarget): TestBrowser {
    return new TestBrowser(app, this.cookies);
  }

  /** The Cookie header this browser sends. */
  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  /** Sends a request; `json` becomes the body; `csrf` overrides the header (false: none). */
  async request(
    method: string,
    path: string,
    options: { json?: unknown; headers?: Record<string, string>; csrf?: string | false; body?: string } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.cookies.size) headers.cookie = this.cookieHeader();
    if (!["GET", "HEAD"].includes(method)) {
      const csrf = options.csrf === undefined ? this.cookies.get("bazaar_csrf") : options.csrf;
      if (csrf !== false && csrf !== undefined) headers["x-csrf-token"] = csrf;
    }
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    const res = await this.app.request(path, { method, headers, body });
    this.remember(res);
    return res;
  }

  /** Applies a response's Set-Cookie headers, in order. */
  remember(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";").map((s) => s.trim());
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const deleted = attributes.some((a) => /^max-age=0$/i.test(a)) || value === "";
      if (deleted) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  get(path: string, headers?: Record<string, string>) {
    return this.request("GET", path, { headers });
  }
  post(path: string, json?: unknown, options: { csrf?: string | false } = {}) {
    return this.request("POST", path, { json, ...options });
  }
  patch(path: string, json?: unknown, options: { csrf?: string | false } = {}) {
    return this.request("PATCH", path, { json, ...options });
  }
  delete(path: string, options: { csrf?: string | false } = {}) {
    return this.request("DELETE", path, options);
  }

  /** Loads /api/session, as the UI does first: sets the CSRF cookie. */
  async open(): Promise<{ user: { id: string; email: string; roles: string[] } | null; csrfToken: string }> {
    return body(await this.get("/api/session"));
  }

  /** Signs up a new customer and signs them in, as the web UI does (after loading /api/session). */
  async signUp(name = "Test Buyer"): Promise<{ id: string; email: string; roles: string[] }> {
    await this.open();
    const email = `${name.toLowerCase().replace(/\W+/g, "-")}-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const password = "correct horse battery";
    const res = await this.post("/api/auth/signup", { email, password, displayName: name });
    if (res.status !== 202) throw new Error(`sign-up answered ${res.status}: ${await res.text()}`);
    const signedIn = await this.post("/api/auth/signin", { email, password });
    if (signedIn.status !== 200) throw new Error(`sign-in after sign-up answered ${signedIn.status}: ${await signedIn.text()}`);
    return ((await signedIn.json()) as { user: { id: string; email: string; roles: string[] } }).user;
  }

  /**
   * Checks out as the web UI does: reads the cart, then places it at the total it showed.
   * `card` is sent as given (tests send bad ones too).
   */
  async checkout(card: unknown = cards.good, idempotencyKey: string = crypto.randomUUID()): Promise<Response> {
    const { cart } = await body<{ cart: { total: { currency: string; amountMinor: number } } }>(await this.get("/api/cart"));
    return this.post("/api/checkout", { idempotencyKey, card, expectedTotal: { currency: cart.total.currency, amountMinor: cart.total.amountMinor } });
  }

  /** Signs in (after loading /api/session). */
  async signIn(email: string, password: string): Promise<Response> {
    await this.open();
    return this.post("/api/auth/signin", { email, password });
  }
}

/** A response's JSON body, typed by the caller. */
// biome-ignore lint/suspicious/noExplicitAny: tests read many shapes of answer; the caller names the one it expects.
export async function body<T = any>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** The demo admin that identity seeds (SEED_DEMO_DATA). */
export const demoAdmin = { email: "admin@bazaar.local", password: "bazaar-admin" };

/** Test cards of the simulated processor. */
export const cards = {
  good: { number: "4242 4242 4242 4242", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "123" },
  declined: { number: "4000 0000 0000 0002", expiryMonth: 12, expiryYear: new Date().getFullYear() + 3, cvc: "123" },
};
