import { defineConfig } from "drizzle-kit";

// `bunx drizzle-kit generate` (in services/inventory) writes a migration for schema changes;
// migrations are committed and applied by the service at start.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./drizzle",
});
