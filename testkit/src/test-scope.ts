import { type Database, openDatabase } from "@bazaar/platform/db";
import { type ServiceName, serviceEntry } from "@bazaar/platform/service-catalog";
import { type LaunchedProcess, launchProcess, repoRoot, testDatabaseUrl, testRedisPrefix, testVhost } from "./fixtures.ts";
import { startTestIssuer, type TestIssuer } from "./test-issuer.ts";

/** A RabbitMQ vhost of a test's own (see {@link TestScope.vhost}). */
export interface ScopedVhost {
  /** The AMQP URL of the vhost. */
  url: string;
  /** The vhost's name (for rabbitmqctl). */
  name: string;
}

/**
 * What one test file sets up, and takes down again in reverse order: its databases, Redis
 * prefix, vhost, token issuer, processes and anything else it hands to {@link TestScope.add}.
 * A file states only what is particular to it:
 *
 * @example
 * const scope = new TestScope();
 * beforeAll(async () => {
 *   const issuer = await scope.issuer();
 *   catalog = await scope.launch("catalog", { JWKS_URL: issuer.jwksUrl });
 * });
 * afterAll(() => scope.cleanup());
 *
 * Cleanup runs every step even when one fails (a half-finished setup leaves no litter), then
 * fails with every step's error.
 */
export class TestScope {
  private readonly steps: { what: string; run: () => unknown }[] = [];

  /**
   * Registers `close` to run at {@link cleanup}, before everything registered earlier, and
   * returns `resource`; `what` names it in a cleanup failure.
   */
  add<T>(resource: T, close: (resource: T) => unknown, what = "a resource"): T {
    this.steps.push({ what, run: () => close(resource) });
    return resource;
  }

  /** Runs `fn` at {@link cleanup}, before everything registered earlier. */
  defer(fn: () => unknown, what = "a deferred step"): void {
    this.steps.push({ what, run: fn });
  }

  /** A RabbitMQ vhost of this scope's own, deleted with all in it at cleanup. */
  async vhost(): Promise<ScopedVhost> {
    const vhost = await testVhost();
    this.defer(vhost.drop, `deleting vhost ${vhost.name}`);
    return { url: vhost.url, name: vhost.name };
  }

  /** A unique Redis key prefix whose keys are deleted at cleanup. */
  redisPrefix(): string {
    const redis = testRedisPrefix();
    this.defer(redis.clear, `deleting Redis keys ${redis.prefix}*`);
    return redis.prefix;
  }

  /**
   * The URL of a fresh, uniquely named database for `service` (created by whoever opens it
   * first, e.g. a process under test), dropped at cleanup.
   */
  databaseUrl(service: ServiceName): string {
    const database = testDatabaseUrl(service);
    this.defer(database.drop, `dropping the ${service} test database`);
    return database.url;
  }

  /**
   * A fresh database of `service`'s with its committed migrations applied (services/<name>/drizzle),
   * opened with `schema`; closed and dropped at cleanup.
   */
  async database<S extends Record<string, unknown>>(service: ServiceName, schema: S): Promise<Database<S> & { url: string }> {
    const entry = serviceEntry(service);
    if (!entry.database) throw new Error(`${service} has no database of its own in the service catalog`);
    const url = this.databaseUrl(service);
    const migrationsFolder = `${repoRoot}/${entry.entry.split("/src/")[0]}/drizzle`;
    const database = await openDatabase({ url, schema, migrationsFolder });
    this.defer(database.close, `closing the ${service} test database`);
    return { ...database, url };
  }

  /** A token issuer of this scope's own (see {@link startTestIssuer}), stopped at cleanup. */
  async issuer(options: Parameters<typeof startTestIssuer>[0] = {}): Promise<TestIssuer> {
    const issuer = await startTestIssuer(options);
    this.defer(issuer.stop, "stopping the test issuer");
    return issuer;
  }

  /**
   * A process of the service catalog on free ports with its own database, Redis prefix and
   * (unless `env` gives AMQP_URL) vhost, healthy (see {@link launchProcess}); stopped and its
   * resources removed at cleanup.
   */
  async launch(name: ServiceName, env: Record<string, string> = {}): Promise<LaunchedProcess> {
    const launched = await launchProcess(name, env);
    this.defer(launched.cleanup, `stopping ${name}`);
    return launched;
  }

  /** Runs every registered step, last registered first; fails afterwards with each step that failed. */
  async cleanup(): Promise<void> {
    const failures: Error[] = [];
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step.run();
      } catch (err) {
        failures.push(new Error(`${step.what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} cleanup steps failed: ${failures.map((f) => f.message).join("; ")}`);
  }
}
