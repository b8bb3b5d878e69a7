/**
 * RabbitMQ virtual hosts, for isolated platforms on one broker (test runs, a second dev
 * instance). Made with `rabbitmqctl` on this machine, which needs no management plugin.
 */
async function rabbitmqctl(...args: string[]): Promise<void> {
  const proc = (() => {
    try {
      return Bun.spawn(["rabbitmqctl", "-q", ...args], { stdout: "pipe", stderr: "pipe" });
    } catch {
      throw new Error("rabbitmqctl is not installed here: isolated vhosts need it (it comes with rabbitmq-server)");
    }
  })();
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`rabbitmqctl ${args.join(" ")} failed (${code}): ${stderr.trim()}`);
}

/** Creates a vhost (if missing) that the URL's user may use fully; returns the URL pointing at it. */
export async function ensureVhost(amqpUrl: string, name: string): Promise<string> {
  const url = new URL(amqpUrl);
  await rabbitmqctl("add_vhost", name).catch((err: Error) => {
    if (!/already exists/i.test(err.message)) throw err;
  });
  await rabbitmqctl("set_permissions", "-p", name, decodeURIComponent(url.username || "guest"), ".*", ".*", ".*");
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/** Deletes a vhost and everything in it; a vhost that does not exist is fine. */
export async function deleteVhost(name: string): Promise<void> {
  await rabbitmqctl("delete_vhost", name).catch((err: Error) => {
    if (!/does not exist|not_found|no_such_vhost/i.test(err.message)) throw err;
  });
}
