// Access tokens: short-lived EdDSA JWTs (jose). The key comes from config; in the local profile
// only, it is generated once into the data dir. Verification pins the algorithm, issuer and
// audience, so `alg: none`, a foreign issuer or a token minted for another audience never pass.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import { ConfigError, type Config } from "../../config/index.ts";
import { defineErrors } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Clock } from "../../lib/time.ts";

export const JWT_KEY_FILE = "jwt-signing-key.pem";
export const ACCESS_TOKEN_AUDIENCE = "portcullis-api";

export const TOKEN_ERRORS = defineErrors({
  ACCESS_TOKEN_INVALID: { status: 401, title: "Access token invalid" },
  ACCESS_TOKEN_EXPIRED: { status: 401, title: "Access token expired" },
});

export const resolveJwtKey = (config: Config): { privateKey: KeyObject; publicKey: KeyObject; source: string } => {
  let pem: string;
  let source: string;
  if (config.auth.jwtPrivateKey) {
    pem = config.auth.jwtPrivateKey;
    source = "config auth.jwtPrivateKey";
  } else if (config.profile === "local") {
    const path = join(config.dataDir, JWT_KEY_FILE);
    if (!existsSync(path)) {
      mkdirSync(config.dataDir, { recursive: true });
      const { privateKey } = generateKeyPairSync("ed25519");
      try {
        writeFileSync(path, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
      } catch (error) {
        // Another process created it first: use theirs.
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
    }
    pem = readFileSync(path, "utf8");
    source = path;
  } else {
    throw new ConfigError(
      "auth.jwtPrivateKey",
      "default",
      `invalid config: auth.jwtPrivateKey is required in the ${config.profile} profile (set PORTCULLIS_AUTH__JWT_PRIVATE_KEY=file:/path/to/ed25519.pem)`,
    );
  }
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ed25519") throw new ConfigError("auth.jwtPrivateKey", source, `invalid config: ${source}: the JWT signing key must be Ed25519`);
  return { privateKey, publicKey: createPublicKey(privateKey), source };
};

export type AccessClaims = { userId: string; sessionId: string; role: string; expiresAt: Date };

export const accessTokens = (config: Config, clock: Clock) => {
  const { privateKey, publicKey } = resolveJwtKey(config);
  const issuer = config.publicUrl ?? "urn:portcullis";
  const ttl = config.auth.accessTokenTtlSeconds;
  return {
    ttlSeconds: ttl,
    issue: async (claims: { userId: string; sessionId: string; role: string }): Promise<{ token: string; expiresAt: Date }> => {
      const iat = Math.floor(clock.now().getTime() / 1000);
      const token = await new SignJWT({ sid: claims.sessionId, role: claims.role })
        .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt" })
        .setIssuer(issuer)
        .setAudience(ACCESS_TOKEN_AUDIENCE)
        .setSubject(claims.userId)
        .setJti(uuidv7())
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttl)
        .sign(privateKey);
      return { token, expiresAt: new Date((iat + ttl) * 1000) };
    },
    verify: async (token: string): Promise<AccessClaims> => {
      try {
        const { payload } = await jwtVerify(token, publicKey, {
          algorithms: ["EdDSA"],
          issuer,
          audience: ACCESS_TOKEN_AUDIENCE,
          typ: "at+jwt",
          currentDate: clock.now(),
          requiredClaims: ["sub", "exp", "iat"],
        });
        if (typeof payload.sid !== "string" || typeof payload.sub !== "string") throw TOKEN_ERRORS.ACCESS_TOKEN_INVALID("the access token lacks its session");
        return { userId: payload.sub, sessionId: payload.sid, role: String(payload.role), expiresAt: new Date(payload.exp! * 1000) };
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw TOKEN_ERRORS.ACCESS_TOKEN_EXPIRED("the access token has expired; refresh it with POST /auth/refresh");
        if (error instanceof joseErrors.JOSEError) throw TOKEN_ERRORS.ACCESS_TOKEN_INVALID(`the access token was refused (${error.code})`);
        throw error;
      }
    },
  };
};
export type AccessTokens = ReturnType<typeof accessTokens>;

/** JWS compact form: three base64url parts, the header starting `{"` (eyJ). API keys never look like this. */
export const looksLikeJwt = (token: string): boolean => token.startsWith("eyJ") && token.split(".").length === 3;
