import type { Env, MiddlewareHandler, ValidationTargets } from "hono";
import { type InferInput, validator } from "hono/validator";
import { z } from "zod";
import { maxPageSize } from "@bazaar/platform/validation";
import { validationError } from "./errors.ts";

/**
 * What a route validated by {@link valid} takes and hands on: `in` is the request as a client
 * sends it (the schema's input: optional and defaulted fields may be left out; query and path
 * values are text), `out` the parsed value the handler reads.
 */
type ValidInput<T extends keyof ValidationTargets, S extends z.ZodType> = {
  in: { [K in T]: K extends "json" ? z.input<S> : InferInput<z.input<S>, K> };
  out: { [K in T]: z.output<S> };
};

/**
 * Hono validator middleware from a zod schema: a bad request gets a 400 with field-level
 * errors, a good one reaches the handler typed, through `c.req.valid(target)`. Its input type
 * reaches the web UI's typed client (hono/client).
 */
export function valid<T extends keyof ValidationTargets, S extends z.ZodType, E extends Env = Env, P extends string = string>(
  target: T,
  schema: S,
): MiddlewareHandler<E, P, ValidInput<T, S>> {
  const middleware = validator(target, (value, c) => {
    const result = schema.safeParse(value);
    if (!result.success) return validationError(c, result.error);
    return result.data as z.output<S>;
  });
  // Hono's validator types its input from the parsed output; what a client sends is the schema's input.
  return middleware as unknown as MiddlewareHandler<E, P, ValidInput<T, S>>;
}

/**
 * A `pageSize` query parameter: 1 to the services' largest page, `fallback` when absent. The
 * BFF always asks for a page size, so the services' "0 means the default" is not offered.
 */
export function pageSizeQuery(fallback: number) {
  return z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(maxPageSize, `must be at most ${maxPageSize}`)
    .optional()
    .default(fallback);
}
