import { sql } from "drizzle-orm";
import { log } from "@bazaar/platform/log";
import type { Accounts } from "./accounts.ts";
import type { IdentityDatabase } from "./signing-keys.ts";

/** The demo admin account. */
export interface AdminAccount {
  email: string;
  password: string;
}

/**
 * Makes sure the demo admin account exists (roles customer and admin), creating it through
 * the normal registration path so it is announced like any other account. An existing account
 * with that email is left as it is — its password is not reset and, if it is a customer
 * account someone registered, it is not promoted.
 *
 * Dev defaults (env.ts): ADMIN_EMAIL admin@bazaar.local, ADMIN_PASSWORD bazaar-admin.
 */
export async function seedAdmin(database: IdentityDatabase, accounts: Accounts, admin: AdminAccount): Promise<{ created: boolean }> {
  const email = admin.email.trim().toLowerCase();
  // Replicas starting together: one creates the account, the others then find it.
  return database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${"bazaar:identity:seed-admin"}))`);
    const existing = await accounts.userByEmail(email);
    if (existing) {
      if (!existing.roles.includes("admin")) log.warn("the seed admin's email belongs to an account without the admin role; left alone", { email });
      return { created: false };
    }
    await accounts.createAccount({ email, password: admin.password, displayName: "Bazaar Admin", roles: ["customer", "admin"] });
    log.info("created the demo admin account", { email });
    return { created: true };
  });
}
