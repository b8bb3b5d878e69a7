import { createHash } from "node:crypto";

/**
 * The demo shop's stock of a product: a number derived from a hash of its id, so every run
 * (and every replica) gives a product the same quantity. About one product in twelve gets only
 * one or two units, so "two buyers, one last unit" can be shown; the rest get 5 to 60.
 */
export function demoQuantity(productId: string): number {
  const digest = createHash("sha256").update(productId.toLowerCase()).digest();
  const h = digest.readUInt32BE(0);
  const scarce = digest.readUInt32BE(4) % 12 === 0;
  return scarce ? 1 + (h % 2) : 5 + (h % 56);
}
