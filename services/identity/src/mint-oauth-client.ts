/**
 * Mints an OAuth client for a calling service: `bun run oauth:client <client id>` prints a new
 * random secret, for the service's OAUTH_CLIENT_SECRET, and the entry identity's OAUTH_CLIENTS
 * needs (the client id and the argon2id hash of the secret). Identity never sees the secret
 * itself. The secret is shown once: store it where the service's other secrets are.
 */
import { mintClient } from "./oauth-clients.ts";

const [clientId, ...rest] = process.argv.slice(2);
if (!clientId || rest.length > 0) {
  process.stderr.write("usage: bun run oauth:client <client id>   e.g. bun run oauth:client orders\n");
  process.exit(2);
}
try {
  const client = await mintClient(clientId);
  process.stdout.write(
    [
      `# The ${client.clientId} service's environment (keep the secret secret; it is not shown again):`,
      `OAUTH_CLIENT_ID=${client.clientId}`,
      `OAUTH_CLIENT_SECRET=${client.secret}`,
      "# identity's OAUTH_CLIENTS lists this entry, separated from the other clients' by a space:",
      client.entry,
      "",
    ].join("\n"),
  );
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
