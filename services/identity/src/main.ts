import { startService } from "@bazaar/platform/service";
import { IdentityService } from "@bazaar/proto/bazaar/identity/v1/identity_pb";
import { AccessTokenIssuer } from "./access-tokens.ts";
import { Accounts } from "./accounts.ts";
import * as schema from "./db/schema.ts";
import { accountSettings, env, signingKeySettings, tokenEndpointSettings } from "./env.ts";
import { FailureDelays } from "./failure-delays.ts";
import { LoginThrottle } from "./login-throttle.ts";
import { RefreshTokenPurge } from "./refresh-token-purge.ts";
import { identityAccess, identityHandlers } from "./rpc.ts";
import { seedAdmin } from "./seed.ts";
import { SigningKeys } from "./signing-keys.ts";
import { addTokenEndpoint } from "./token-endpoint.ts";
import { addWellKnownRoutes } from "./well-known.ts";

const service = startService("identity", env, { auth: false });
const database = await service.openDatabase({ schema });
const keys = (await SigningKeys.open(database, signingKeySettings)).start();
service.onShutdown("signing key reload", () => keys.stop());
// Identity checks bearer tokens against its own current keys, in process.
service.useAuth({ jwks: () => keys.jwks(), issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE });
addWellKnownRoutes(service.http, { issuer: env.JWT_ISSUER, jwks: () => keys.jwks(), cacheSeconds: env.JWKS_CACHE_SECONDS, publicUrl: env.PUBLIC_URL });
const purge = new RefreshTokenPurge(database, env.REFRESH_TOKEN_PURGE_MS, { graceSeconds: env.REFRESH_TOKEN_PURGE_GRACE_SECONDS }).start();
service.onShutdown("refresh token purge", () => purge.stop());
const redis = await service.connectRedis();
const relay = await service.useOutbox(database);
const tokens = new AccessTokenIssuer(keys, { issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE });
const accounts = new Accounts(database, tokens, new LoginThrottle(redis), accountSettings, relay);
// The token endpoint's throttle lets attempts through while Redis is out: minted client secrets
// are 256 random bits (no guessing to slow), and refusing would stop every service renewing
// its token, turning a Redis outage into a platform outage one token lifetime later.
addTokenEndpoint(service.http, tokens, new FailureDelays(redis, "token endpoint", "allow"), tokenEndpointSettings);
if (env.SEED_DEMO_DATA) await seedAdmin(database, accounts, { email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD });
service.addGrpc(IdentityService, identityHandlers(accounts), identityAccess);
await service.listen();
