/**
 * Looks for card data in a service's database: every column of every table, as text (bytea as
 * its raw bytes, the way a protobuf string sits in an outbox payload), searched for card numbers
 * and security codes that a test used.
 *
 * What counts as a match is chosen so that it cannot fire on what databases are full of (UUIDs,
 * hex hashes, timestamps, amounts) and yet finds a card wherever it was put:
 * - a card number: its digits in order, with or without a space or dash between any two, not
 *   inside a longer run of digits; also its first twelve digits alone (a number stored without
 *   its last four). Nothing else in a test's data is twelve or more digits of a test card.
 * - a security code: exactly its digits, with neither a letter, digit, dash nor dot next to
 *   them. Pick codes with a leading zero (0917): no integer renders with one, and a dash or
 *   dot boundary excludes a UUID's group (…-0917-…), a date's parts and a decimal's fraction,
 *   while a column holding the code, a JSON string ("0917") or a protobuf string (a length
 *   byte, then the code) is still found.
 */

/** The card data a test used, to look for. */
export interface CardSecrets {
  /** Card numbers, spaces allowed. */
  numbers: readonly string[];
  /** Security codes, 3 or 4 digits; a leading zero makes them distinctive (see above). */
  cvcs: readonly string[];
}

/** Where a piece of card data was found. */
export interface CardDataHit {
  table: string;
  column: string;
  /** Which secret: "number 4000…0002", "first 12 digits of 4000…0002", "cvc 0917". */
  what: string;
}

/** Runs a query on the database being scanned (platform.query bound to a service, or sql.unsafe). */
export type Query = (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

const masked = (digits: string) => `${digits.slice(0, 4)}…${digits.slice(-4)}`;

/** The patterns {@link findCardData} searches with, each named by what it finds. */
export function cardDataPatterns(secrets: CardSecrets): { what: string; pattern: RegExp }[] {
  const patterns: { what: string; pattern: RegExp }[] = [];
  const digitsPattern = (digits: string) => new RegExp(`(?<![0-9])${[...digits].join("[ -]?")}(?![0-9])`);
  for (const number of secrets.numbers) {
    const digits = number.replace(/[^0-9]/g, "");
    if (digits.length < 12) throw new Error(`a card number has 12 to 19 digits, got ${digits.length}`);
    patterns.push({ what: `number ${masked(digits)}`, pattern: digitsPattern(digits) });
    patterns.push({ what: `first 12 digits of ${masked(digits)}`, pattern: new RegExp(`(?<![0-9])${[...digits.slice(0, 12)].join("[ -]?")}`) });
  }
  for (const cvc of secrets.cvcs) {
    if (!/^[0-9]{3,4}$/.test(cvc)) throw new Error(`a security code is 3 or 4 digits, got ${JSON.stringify(cvc)}`);
    patterns.push({ what: `cvc ${cvc}`, pattern: new RegExp(`(?<![0-9A-Za-z.-])${cvc}(?![0-9A-Za-z.-])`) });
  }
  return patterns;
}

/** What in `value` (a column's text, or a bytea's bytes) is card data: the names of the patterns it matches. */
export function cardDataIn(value: unknown, patterns: readonly { what: string; pattern: RegExp }[]): string[] {
  if (value === null || value === undefined) return [];
  const text = value instanceof Uint8Array ? Buffer.from(value).toString("latin1") : String(value);
  return patterns.filter((p) => p.pattern.test(text)).map((p) => p.what);
}

/**
 * Every place in the database that holds card data, as table, column and what was found;
 * empty if none. Also returns how many columns it searched (a scan of nothing proves nothing).
 */
export async function findCardData(query: Query, secrets: CardSecrets): Promise<{ hits: CardDataHit[]; columns: number }> {
  const patterns = cardDataPatterns(secrets);
  const columns = (await query(
    `select c.table_schema, c.table_name, c.column_name, c.data_type
       from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where t.table_type = 'BASE TABLE' and c.table_schema not in ('pg_catalog', 'information_schema')
      order by c.table_schema, c.table_name, c.ordinal_position`,
  )) as { table_schema: string; table_name: string; column_name: string; data_type: string }[];
  const tables = Map.groupBy(columns, (c) => `"${c.table_schema}"."${c.table_name}"`);
  const hits: CardDataHit[] = [];
  for (const [table, cols] of tables) {
    // Everything as text, except bytea: its text form is hex, which would hide a string in it.
    const select = cols.map((c, i) => (c.data_type === "bytea" ? `"${c.column_name}" as c${i}` : `"${c.column_name}"::text as c${i}`)).join(", ");
    const rows = await query(`select ${select} from ${table}`);
    cols.forEach((c, i) => {
      const found = new Set(rows.flatMap((row) => cardDataIn(row[`c${i}`], patterns)));
      for (const what of found) hits.push({ table: c.table_name, column: c.column_name, what });
    });
  }
  return { hits, columns: columns.length };
}
