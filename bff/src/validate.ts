import type { ValidationTargets } from "hono";
import { validator } from "hono/validator";
import { z } from "zod";
import { maxPageSize } from "@bazaar/platform/validation";
import { validationError } from "./errors.ts";

/**
 * Hono validator middleware from a zod schema: a bad request gets a 400 with field-level
 * errors, a good one reaches the handler typed, through `c.req.valid(target)`.
 */
export function valid<T extends keyof ValidationTargets, S extends z.ZodType>(target: T, schema: S) {
  return validator(target, (value, c) => {
    const result = schema.safeParse(value);
    if (!result.success) return validationError(c, result.error);
    return result.data as z.infer<S>;
  });
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
