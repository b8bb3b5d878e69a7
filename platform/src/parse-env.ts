import { z } from "zod";

/*
 * Reading an app's environment: parseEnv and the development-default secrets, apart from
 * env.ts's shared variables so that what only parses its own (the dev runner) does not load
 * the chassis's auth and gRPC modules with them. env.ts re-exports all of it.
 */

/** Where a process runs: on a developer's machine (or in a test), or anywhere real. */
export type DeploymentMode = "development" | "production";

/**
 * The deployment mode: DEPLOYMENT_MODE when set, else "production" when NODE_ENV is
 * "production" (the Dockerfile sets it), else "development". A value that is neither counts
 * as production: a typo must not switch the checks off ({@link commonEnv} reports it too).
 */
export function deploymentMode(source: Record<string, string | undefined> = process.env): DeploymentMode {
  const declared = source.DEPLOYMENT_MODE;
  if (declared === "development" || declared === "production") return declared;
  if (declared) return "production";
  return source.NODE_ENV === "production" ? "production" : "development";
}

/** What {@link developmentSecret} records about a variable. */
interface DevelopmentDefault {
  /** The default, public in this repository. */
  value: string;
  /** How to make a real value, e.g. "openssl rand -base64 32". */
  howToSet: string;
}

// The variables whose defaults are known development values; parseEnv refuses them outside
// development. A registry (not a wrapper type) so the schema stays a plain zod string.
const developmentDefaults = z.registry<DevelopmentDefault>();

/**
 * A secret with a development default, so `bun run dev` and the tests need no setup. Outside
 * development (see {@link deploymentMode}) a process whose value is still that default (or
 * unset) refuses to start, naming the variable and `howToSet`: a default in this repository
 * is known to everyone. `schema` checks a value that is set (it parses the default too).
 */
export function developmentSecret<S extends z.ZodType<unknown, string>>(schema: S, devDefault: string, howToSet: string) {
  // prefault, not default: the default goes through `schema` (and its transforms) too.
  const variable = schema.prefault(devDefault as z.input<S>);
  developmentDefaults.add(variable, { value: devDefault, howToSet });
  return variable;
}

/** One line per variable of `schema` that is left at its development default outside development. */
export function developmentDefaultsLeft(schema: z.ZodType, source: Record<string, string | undefined>): string[] {
  const mode = deploymentMode(source);
  if (mode === "development" || !(schema instanceof z.ZodObject)) return [];
  const why = source.DEPLOYMENT_MODE ? `DEPLOYMENT_MODE=${source.DEPLOYMENT_MODE}` : `NODE_ENV=${source.NODE_ENV}`;
  const lines: string[] = [];
  for (const [name, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    const dev = developmentDefaults.get(field);
    const value = source[name];
    if (!dev || (value !== undefined && value !== "" && value !== dev.value)) continue;
    const state = value === undefined || value === "" ? "it is not set, so it would be its development default" : "it is the development default";
    lines.push(
      `invalid environment variable ${name}: ${state}, which is public, and this process runs in production (${why}); set a value of your own: ${dev.howToSet}`,
    );
  }
  return lines;
}

/**
 * Parses the environment against a zod schema. On a bad or missing variable it prints one
 * line per problem, naming the variable and what was wrong, and exits with status 1: a
 * process that starts, starts with a valid configuration. Outside development, a secret left
 * at its development default (see {@link developmentSecret}) is such a problem too.
 *
 * Each app calls this once, from its own `src/env.ts`; nothing else reads `process.env`.
 */
export function parseEnv<S extends z.ZodType>(schema: S, source: Record<string, string | undefined> = process.env): z.infer<S> {
  const result = schema.safeParse(source);
  const defaultsLeft = developmentDefaultsLeft(schema, source);
  if (result.success && defaultsLeft.length === 0) return result.data;
  const shape = schema instanceof z.ZodObject ? (schema.shape as Record<string, z.ZodType>) : {};
  for (const issue of result.error?.issues ?? []) {
    const name = issue.path.join(".") || "(environment)";
    const value = source[name];
    // A secret's value stays out of the logs, even a wrong one.
    const secret = shape[name] !== undefined && developmentDefaults.has(shape[name]);
    const shown = value === undefined ? "it is not set" : secret ? `got ${value.length} characters, not shown` : `got ${JSON.stringify(value)}`;
    process.stderr.write(`invalid environment variable ${name}: ${issue.message} (${shown})\n`);
  }
  for (const line of defaultsLeft) process.stderr.write(`${line}\n`);
  process.exit(1);
}
