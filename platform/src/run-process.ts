/**
 * `bun platform/src/run-process.ts <name>`: starts one process of the service catalog by its
 * name — the container image's entry point, so one image serves every Bazaar process and the
 * command (`catalog`, `bff`, …) picks which. The entry module runs in this same Bun process
 * (PID 1 in a container), so SIGTERM reaches the chassis's graceful shutdown directly.
 */
import { repositoryRoot, serviceCatalog, serviceEntry, type ServiceName } from "./service-catalog.ts";

const names = serviceCatalog.map((s) => s.name) as readonly string[];
const name = process.argv[2];

if (!name || !names.includes(name)) {
  process.stderr.write(`usage: run-process.ts <name>, one of: ${names.join(", ")}${name ? ` (got ${JSON.stringify(name)})` : ""}\n`);
  process.exit(2);
}
await import(`${repositoryRoot}/${serviceEntry(name as ServiceName).entry}`);
