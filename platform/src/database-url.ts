/**
 * Database URLs, apart from db.ts so that what only needs a URL (the environment's defaults,
 * the dev runner) does not load drizzle, postgres.js and the tracer with it.
 */

/** The same Postgres URL pointing at another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
