import { type FieldViolation, InvalidArgumentError } from "./errors.ts";
import { uuidPattern } from "./ids.ts";
import { sameOriginPath } from "./same-origin.ts";

/**
 * Request validation, declared once. A rule is a function that checks one value and returns
 * it normalized (an id lower-cased, a text trimmed), or throws an {@link InvalidArgumentError}
 * saying what is wrong; {@link validate} runs the rules of a request's fields and collects
 * every violation, so a caller learns about all bad fields at once, each as data (the server
 * sends them as a google.rpc.BadRequest detail).
 *
 * ```ts
 * const { orderId, pageSize: size } = validate({
 *   orderId: field("order_id", req.orderId, uuid("an order id")),
 *   pageSize: field("page_size", req.pageSize, pageSize),
 * });
 * ```
 *
 * Violations a rule throws name fields relative to the value it checks ("" for the value
 * itself, "quantity" for a field of a message, "[2]" for an element of a list); `field`
 * puts the path of the value in front, so rules nest: a rule for a line of an order is used
 * by a rule for the list of lines.
 */

/** Checks a value; returns it normalized or throws an {@link InvalidArgumentError}. */
export type Rule<I, O = I> = (value: I) => O;

/** Ends a rule: the value it checks is wrong, for the reason `description` gives. */
export function violation(description: string): never {
  throw new InvalidArgumentError(description);
}

/** One value of a request and the rule it must pass, for {@link validate}; made by {@link field}. */
export interface FieldCheck<O> {
  /** The path to the value, e.g. "order_id" or "product.price"; "" when the rule names its fields itself. */
  readonly path: string;
  /** Runs the rule on the value. */
  readonly run: () => O;
}

/** The value at `path` (proto field names, e.g. "product.price") must pass `rule`. */
export function field<I, O>(path: string, value: I, rule: Rule<I, O>): FieldCheck<O> {
  return { path, run: () => rule(value) };
}

/** What {@link validate} returns: each check's normalized value under its key. */
export type Validated<S extends Record<string, FieldCheck<unknown>>> = { [K in keyof S]: S[K] extends FieldCheck<infer O> ? O : never };

/** `sub` (a path relative to a value) under the value's own `path`. */
function joinPath(path: string, sub: string): string {
  if (!path) return sub;
  if (!sub) return path;
  return sub.startsWith("[") ? `${path}${sub}` : `${path}.${sub}`;
}

/** Runs a check, adding its violations (under its path) to `into`; undefined if it failed. */
function runCheck<O>(check: FieldCheck<O>, into: FieldViolation[]): { value: O } | undefined {
  try {
    return { value: check.run() };
  } catch (err) {
    // Anything but a violation is a bug in the rule, not a bad request: let it through.
    if (!(err instanceof InvalidArgumentError)) throw err;
    for (const v of err.violations) into.push({ field: joinPath(check.path, v.field), description: v.description });
    return undefined;
  }
}

/**
 * Runs every check and returns the normalized values by key, or throws one
 * {@link InvalidArgumentError} listing the violations of all the checks that failed, in the
 * order of the checks.
 */
export function validate<S extends Record<string, FieldCheck<unknown>>>(checks: S): Validated<S> {
  const out: Record<string, unknown> = {};
  const violations: FieldViolation[] = [];
  for (const [key, check] of Object.entries(checks)) {
    const result = runCheck(check, violations);
    if (result) out[key] = result.value;
  }
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return out as Validated<S>;
}

/** A message field that must be set, then pass `rule`: an unset one "is required". */
export function required<I, O>(rule: Rule<I, O>): Rule<I | undefined, O> {
  return (value) => (value === undefined ? violation("is required") : rule(value));
}

/** A message field that may be unset (then undefined); when set, it must pass `rule`. */
export function optional<I, O>(rule: Rule<I, O>): Rule<I | undefined, O | undefined> {
  return (value) => (value === undefined ? undefined : rule(value));
}

/** A string that must not be empty, such as a token. */
export const nonEmpty: Rule<string, string> = (value) => value || violation("is required");

/** A UUID (every Bazaar id is one), returned lower-case; `what` names it, e.g. "an order id". */
export function uuid(what: string): Rule<string, string> {
  return (value) => {
    if (!value) violation("is required");
    if (!uuidPattern.test(value)) violation(`must be ${what} (a UUID), got ${JSON.stringify(value.slice(0, 64))}`);
    return value.toLowerCase();
  };
}

/** The page size a listing uses when a request sets none (0). */
export const defaultPageSize = 20;
/** The largest page a listing returns; the BFF's own limits agree with it. */
export const maxPageSize = 100;

/** A page size: 1 to {@link maxPageSize}, or 0 for the default; returns the size to use. */
export const pageSize: Rule<number, number> = (n) => {
  if (n < 0 || n > maxPageSize) violation(`must be between 1 and ${maxPageSize} (0 means ${defaultPageSize}), got ${n}`);
  return n || defaultPageSize;
};

/** An ISO 4217 currency code: three upper-case letters, as in the databases' checks. */
export const currencyCodePattern = /^[A-Z]{3}$/;

/** An ISO 4217 currency code such as USD. */
export const currencyCode: Rule<string, string> = (code) => {
  if (!currencyCodePattern.test(code)) violation(`must be an ISO 4217 code such as USD, got ${JSON.stringify(code.slice(0, 16))}`);
  return code;
};

/** An OAuth client id (a service's): a lower-case letter, then 1 to 31 lower-case letters, digits or dashes. */
export const oauthClientIdPattern = /^[a-z][a-z0-9-]{1,31}$/;

/** What {@link oauthClientId} asks for, in words. */
export const oauthClientIdRule = "must be a client id: a lower-case letter, then 1 to 31 lower-case letters, digits or dashes";

/** An OAuth client id such as orders. */
export const oauthClientId: Rule<string, string> = (id) => (oauthClientIdPattern.test(id) ? id : violation(oauthClientIdRule));

/**
 * An idempotency key: 8 to 128 visible ASCII characters. Keys end up in messages and logs, so
 * no spaces or control characters; a random UUID per operation is a good key.
 */
export const idempotencyKey: Rule<string, string> = (key) => {
  if (key.length < 8 || key.length > 128) {
    violation(`must be 8 to 128 characters, got ${key.length}; send a new random key per request (a UUID will do)`);
  }
  if (!/^[\x21-\x7e]+$/.test(key)) violation("must be visible ASCII characters, without spaces");
  return key;
};

/** What every payment method token starts with, so that one is recognisable in a request (or a log). */
export const paymentMethodTokenPrefix = "pm_";

/**
 * A payment method token as PaymentsService.CreatePaymentMethod issues it: "pm_" and 43
 * base64url characters (256 random bits). Orders checks the form when an order is placed;
 * whether the token is usable (its user's, unexpired, unused) only payments can say.
 */
export const paymentMethodToken: Rule<string, string> = (token) => {
  if (!token) violation("is required: tokenize the card with PaymentsService.CreatePaymentMethod and send its token");
  if (!token.startsWith(paymentMethodTokenPrefix) || !/^[A-Za-z0-9_-]{43}$/.test(token.slice(paymentMethodTokenPrefix.length)))
    violation("must be a payment method token from PaymentsService.CreatePaymentMethod (pm_ and 43 characters)");
  return token;
};

/** A whole number from `min` to `max`, such as a quantity. */
export function integer(min: number, max: number): Rule<number, number> {
  return (n) => {
    if (!Number.isInteger(n) || n < min || n > max) violation(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

/** An amount of money in minor units (cents), from `min` to `max`; returned as a number. */
export function amountMinor(min: bigint, max: bigint): Rule<bigint, number> {
  return (n) => {
    if (n < min || n > max) violation(`must be between ${min} and ${max} (minor units), got ${n}`);
    return Number(n);
  };
}

/** Money as `bazaar.common.v1.Money` carries it. */
export interface MoneyInput {
  currencyCode: string;
  amountMinor: bigint;
}

/** Checked money: a currency code and an amount in its minor unit. */
export interface CheckedMoney {
  currencyCode: string;
  amountMinor: number;
}

/** A `bazaar.common.v1.Money`: a currency code and an amount from `min` to `max` minor units. */
export function money(min: bigint, max: bigint): Rule<MoneyInput, CheckedMoney> {
  return (m) =>
    validate({
      currencyCode: field("currency_code", m.currencyCode, currencyCode),
      amountMinor: field("amount_minor", m.amountMinor, amountMinor(min, max)),
    });
}

/** Options of {@link text}. */
export interface TextOptions {
  /** The most characters (UTF-16 units) allowed. */
  max: number;
  /** Trim white space first (and count and return the trimmed text). */
  trim?: boolean;
  /** Must not be empty; a string is advice added to "is required", e.g. "say why". */
  required?: boolean | string;
}

/** A text of at most `max` characters; see {@link TextOptions}. */
export function text(options: TextOptions): Rule<string, string> {
  return (raw) => {
    const value = options.trim ? raw.trim() : raw;
    if (!value && options.required) violation(options.required === true ? "is required" : `is required: ${options.required}`);
    if (value.length > options.max) violation(`must be at most ${options.max} characters, got ${value.length}`);
    return value;
  };
}

/** The most characters of an image URL. */
export const maxImageUrlLength = 500;

/**
 * True for an image URL a page may show: empty (no image), a path on the shop's own site, or
 * an https URL. Parsed as a browser would, so a protocol-relative "//evil.example/x.png" (or
 * "/\\evil.example", "/\t/evil.example") is not a path; no white space or control characters.
 */
export function isImageUrl(url: string): boolean {
  if (url === "") return true;
  if (url.length > maxImageUrlLength || /[\s\p{Cc}]/u.test(url)) return false;
  if (url.startsWith("/")) return sameOriginPath(url) !== undefined;
  return URL.parse(url)?.protocol === "https:";
}

/** What {@link isImageUrl} allows, as a person reads it. */
export const imageUrlRule = `must be a path on this site (starting with a single /) or an https URL, at most ${maxImageUrlLength} characters`;

/** An image URL (see {@link isImageUrl}); empty means none. */
export const imageUrl: Rule<string, string> = (url) => (isImageUrl(url) ? url : violation(imageUrlRule));

/** Options of {@link list}. */
export interface ListOptions<O> {
  /** Fewest elements; 0 when omitted. */
  min?: number;
  /** Most elements. */
  max: number;
  /** What an element is, in the singular, for messages: "product" gives "must name at most 100 products". */
  noun: string;
  /**
   * Refuses an element whose key equals an earlier one's: the violation is at the element's
   * `field` ("" for the element itself), and `description` says so, given the earlier
   * element's index and the key.
   */
  unique?: { key: (element: O) => string; field: string; description: (first: number, key: string) => string };
}

/**
 * A list of `min` to `max` elements, each passing `element`; violations name the element
 * ("[2]", "[2].quantity"). The elements are checked only when the count is right, so a huge
 * list costs one violation, not one per element.
 */
export function list<I, O>(element: Rule<I, O>, options: ListOptions<O>): Rule<readonly I[], O[]> {
  const { min = 0, max, noun } = options;
  return (items) => {
    if (items.length < min) violation(min === 1 ? `must name at least one ${noun}` : `must name at least ${min} ${noun}s, got ${items.length}`);
    if (items.length > max) violation(`must name at most ${max} ${noun}s, got ${items.length}`);
    const violations: FieldViolation[] = [];
    const out: O[] = [];
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      const result = runCheck(field(`[${i}]`, item, element), violations);
      if (!result) return;
      out.push(result.value);
      if (!options.unique) return;
      const key = options.unique.key(result.value);
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else violations.push({ field: joinPath(`[${i}]`, options.unique.field), description: options.unique.description(first, key) });
    });
    if (violations.length > 0) throw new InvalidArgumentError(violations);
    return out;
  };
}

/** A line of products and quantities, as an order or a reservation carries it. */
export interface ProductLine {
  productId: string;
  quantity: number;
}

/** Options of {@link productLines}. */
export interface ProductLinesOptions {
  /** Most lines. */
  maxLines: number;
  /** Most units of one product. */
  maxQuantity: number;
  /** Why a line naming the product of an earlier line is refused, given that line's index and the product id. */
  again: (first: number, productId: string) => string;
}

/**
 * The lines of an order or a reservation: 1 to `maxLines`, each naming a product (ids returned
 * lower-case) once, with 1 to `maxQuantity` units.
 */
export function productLines(options: ProductLinesOptions): Rule<readonly ProductLine[], ProductLine[]> {
  const productId = uuid("a product id");
  const quantity = integer(1, options.maxQuantity);
  return list(
    (line: ProductLine) => validate({ productId: field("product_id", line.productId, productId), quantity: field("quantity", line.quantity, quantity) }),
    { min: 1, max: options.maxLines, noun: "line", unique: { key: (line) => line.productId, field: "product_id", description: options.again } },
  );
}
