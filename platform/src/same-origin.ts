/** A stand-in origin for checks that run where no page's origin is known (a server, a service). */
const anyOrigin = "http://same-origin.invalid";

/**
 * Where `url` leads when it is followed from a page of `origin`, if that is still on `origin`:
 * the path, query and fragment, or undefined for a URL that leaves it. The URL is parsed as a
 * browser parses a link — tabs and line breaks dropped, `\` read as `/` — so "/\t/evil.example"
 * and "/\\evil.example" (protocol-relative once parsed) are caught, as are "https://…" and
 * "javascript:…". Used for the sign-in page's `next` (by the web UI, which imports this
 * dependency-free module, and by the BFF that serves it) and for image URLs (validation.ts).
 */
export function sameOriginPath(url: string, origin: string = anyOrigin): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url, origin);
  } catch {
    return undefined;
  }
  return parsed.origin === new URL(origin).origin ? parsed.pathname + parsed.search + parsed.hash : undefined;
}
