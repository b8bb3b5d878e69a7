import type { Money } from "@bazaar/proto/bazaar/common/v1/money_pb";

const formatters = new Map<string, { format: Intl.NumberFormat; digits: number } | null>();

function formatterFor(currency: string): { format: Intl.NumberFormat; digits: number } | null {
  let formatter = formatters.get(currency);
  if (formatter === undefined) {
    try {
      const format = new Intl.NumberFormat("en-US", { style: "currency", currency });
      formatter = { format, digits: format.resolvedOptions().maximumFractionDigits ?? 2 };
    } catch {
      formatter = null; // not an ISO 4217 code Intl knows
    }
    formatters.set(currency, formatter);
  }
  return formatter;
}

/** Money as a `bazaar.common.v1.Money` carries it, or as a number of minor units. */
export type MoneyAmount = Pick<Money, "currencyCode"> & { amountMinor: bigint | number };

/**
 * Money for people: { USD, 4250 } → "$42.50", { JPY, 1200 } → "¥1,200". The minor units are
 * turned into a decimal string, never a float, so no amount is ever rounded. An unknown
 * currency code is shown after the number ("12.00 XYZ", control characters removed); an empty
 * code is USD.
 */
export function formatMoney(money: MoneyAmount): string {
  const currency = money.currencyCode.trim().toUpperCase() || "USD";
  const formatter = formatterFor(currency);
  const digits = formatter?.digits ?? 2;
  const amount = BigInt(money.amountMinor);
  const negative = amount < 0n;
  const minor = (negative ? -amount : amount).toString().padStart(digits + 1, "0");
  const decimal = `${negative ? "-" : ""}${digits ? `${minor.slice(0, -digits)}.${minor.slice(-digits)}` : minor}`;
  if (!formatter) return `${decimal} ${currency.replace(/[\p{Cc}\s]/gu, "").slice(0, 8)}`;
  // Intl formats decimal strings exactly (Intl.NumberFormat v3); the lib types only know numbers.
  return formatter.format.format(decimal as unknown as number);
}
