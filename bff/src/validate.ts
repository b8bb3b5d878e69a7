import type { ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
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
