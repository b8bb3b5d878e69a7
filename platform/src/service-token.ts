import { timestampDate } from "@bufbuild/protobuf/wkt";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { createClient, type GrpcClient } from "./grpc/client.ts";

/**
 * A service's own access token, for calls it makes on nobody's behalf (the orders saga
 * resuming after a restart, a consumer reacting to an event): obtained from identity with the
 * deployment's internal secret (OAuth 2.0 client credentials), cached, and renewed a minute
 * before it expires. Concurrent callers share one request.
 */
export class ServiceTokenSource {
  private current: { token: string; renewAt: number } | undefined;
  private pending: Promise<string> | undefined;
  private readonly identity: GrpcClient<typeof IdentityService>;

  constructor(
    identityAddress: string,
    private readonly serviceName: string,
    private readonly secret: string,
  ) {
    this.identity = createClient(IdentityService, identityAddress, { defaultTimeoutMs: 3_000 });
  }

  /** A valid token (fetching a new one when needed). */
  readonly token = (): Promise<string> => {
    if (this.current && Date.now() < this.current.renewAt) return Promise.resolve(this.current.token);
    this.pending ??= this.identity
      .issueServiceToken({ serviceName: this.serviceName, secret: this.secret })
      .then((res) => {
        const expires = res.expireTime ? timestampDate(res.expireTime).getTime() : Date.now() + 60_000;
        this.current = { token: res.accessToken, renewAt: Math.max(Date.now() + 5_000, expires - 60_000) };
        return res.accessToken;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  };

  close(): void {
    this.identity.close();
  }
}
