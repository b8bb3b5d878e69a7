import { create } from "@bufbuild/protobuf";
import { type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, status, type UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  type HealthCheckRequest,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from "@bazaar/proto/grpc/health/v1/health_pb";

export { ServingStatus };

/**
 * The standard gRPC health service (`grpc.health.v1.Health`, Check and Watch), as Kubernetes
 * probes, Envoy health checks and `grpcurl … grpc.health.v1.Health/Check` expect it. The empty
 * service name is the server as a whole.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{ service: string; call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse> }>();

  constructor(serviceNames: readonly string[]) {
    this.statuses.set("", ServingStatus.NOT_SERVING);
    for (const name of serviceNames) this.statuses.set(name, ServingStatus.NOT_SERVING);
  }

  /** Sets the status of one service ("" for the whole server) and tells its watchers. */
  set(service: string, servingStatus: ServingStatus): void {
    const previous = this.statuses.get(service);
    this.statuses.set(service, servingStatus);
    // Watchers hear of changes only, as the health protocol says.
    if (previous === servingStatus) return;
    for (const w of this.watchers) if (w.service === service) w.call.write(this.response(service));
  }

  /** Sets the status of every service and of the whole server. */
  setAll(servingStatus: ServingStatus): void {
    for (const service of this.statuses.keys()) this.set(service, servingStatus);
  }

  /** The status of a service, or undefined if the server does not serve it. */
  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Ends every Watch stream (their clients see the stream close), so shutdown is not held up. */
  endWatches(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  private response(service: string): HealthCheckResponse {
    return create(HealthCheckResponseSchema, { status: this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN });
  }

  /** The grpc-js implementation of the Health service. */
  implementation(): UntypedServiceImplementation {
    return {
      check: (call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: sendUnaryData<HealthCheckResponse>) => {
        const { service } = call.request;
        if (!this.statuses.has(service)) {
          callback({ code: status.NOT_FOUND, details: `unknown service ${JSON.stringify(service)}` });
          return;
        }
        callback(null, this.response(service));
      },
      watch: (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const watcher = { service: call.request.service, call };
        this.watchers.add(watcher);
        call.on("cancelled", () => this.watchers.delete(watcher));
        call.write(this.response(watcher.service));
      },
    };
  }
}
