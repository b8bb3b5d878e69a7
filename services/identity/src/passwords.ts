/**
 * Password hashing: argon2id with OWASP's recommended parameters (19 MiB of memory, 2
 * iterations, 1 lane), as a PHC string that carries its own salt and parameters.
 */
export const passwordHashOptions = { algorithm: "argon2id", memoryCost: 19_456, timeCost: 2 } as const;

/** The PHC prefix of a hash made with today's parameters. */
const currentPrefix = `$argon2id$v=19$m=${passwordHashOptions.memoryCost},t=${passwordHashOptions.timeCost},p=1$`;

/** Hashes a password (≈60 ms of one core, off the event loop). */
export function hashPassword(password: string): Promise<string> {
  return Bun.password.hash(password, passwordHashOptions);
}

// A hash of a password nobody knows, made at start: a login for an unknown email verifies
// against it, so it costs what a login with a wrong password costs and timing tells nothing.
const dummyHash = hashPassword(crypto.randomUUID());

/**
 * True if `password` matches `hash`. Without a hash (no such account) it still spends a full
 * verification, on a dummy hash, and answers false.
 */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  const matches = await Bun.password.verify(password, hash ?? (await dummyHash));
  return matches && hash !== undefined;
}

/** True if a stored hash was made with other parameters (or another algorithm) than today's. */
export function needsRehash(hash: string): boolean {
  return !hash.startsWith(currentPrefix);
}
