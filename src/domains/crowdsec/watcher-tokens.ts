// Watcher login tokens: EdDSA JWTs signed with the same key as access tokens but for their own
// audience and type, so a watcher token is never an access token and an access token never a
// watcher token. They carry the watcher's token_version: deleting a watcher or changing its
// password makes earlier tokens fail at once.
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import type { Config } from "../../config/index.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Clock } from "../../lib/time.ts";
import { resolveJwtKey } from "../identity/access-tokens.ts";
import { LAPI_ERRORS } from "./lapi-errors.ts";

export const WATCHER_TOKEN_AUDIENCE = "portcullis-crowdsec-lapi";
const TYPE = "crowdsec-watcher+jwt";

export type WatcherClaims = { watcherId: string; machineId: string; version: number; expiresAt: Date };

export const watcherTokens = (config: Config, clock: Clock) => {
  const { privateKey, publicKey } = resolveJwtKey(config);
  const issuer = config.publicUrl ?? "urn:portcullis";
  const ttl = config.crowdsec.watcherTokenTtlSeconds;
  return {
    ttlSeconds: ttl,
    issue: async (claims: { watcherId: string; machineId: string; version: number }): Promise<{ token: string; expiresAt: Date }> => {
      const iat = Math.floor(clock.now().getTime() / 1000);
      const token = await new SignJWT({ id: claims.machineId, ver: claims.version })
        .setProtectedHeader({ alg: "EdDSA", typ: TYPE })
        .setIssuer(issuer)
        .setAudience(WATCHER_TOKEN_AUDIENCE)
        .setSubject(claims.watcherId)
        .setJti(uuidv7())
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttl)
        .sign(privateKey);
      return { token, expiresAt: new Date((iat + ttl) * 1000) };
    },
    verify: async (token: string): Promise<WatcherClaims> => {
      try {
        const { payload } = await jwtVerify(token, publicKey, {
          algorithms: ["EdDSA"],
          issuer,
          audience: WATCHER_TOKEN_AUDIENCE,
          typ: TYPE,
          currentDate: clock.now(),
          requiredClaims: ["sub", "exp", "iat"],
        });
        if (typeof payload.sub !== "string" || typeof payload.id !== "string" || typeof payload.ver !== "number") throw LAPI_ERRORS.tokenRefused("token is invalid");
        return { watcherId: payload.sub, machineId: payload.id, version: payload.ver, expiresAt: new Date(payload.exp! * 1000) };
      } catch (error) {
        // gin-jwt's messages, which CrowdSec agents log and act on (they log in again on expiry)
        if (error instanceof joseErrors.JWTExpired) throw LAPI_ERRORS.tokenRefused("Token is expired");
        if (error instanceof joseErrors.JOSEError) throw LAPI_ERRORS.tokenRefused("token is invalid");
        throw error;
      }
    },
  };
};
export type WatcherTokens = ReturnType<typeof watcherTokens>;
