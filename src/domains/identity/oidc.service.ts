// OIDC single sign-on: authorization code + PKCE against the configured issuer, the ID token's (or
// UserInfo's) claims mapped to a role, users provisioned on first login, and a session like a password login.
// The provider is discovered lazily on the first login and cached, so the server starts (and password
// login keeps working) while the provider is down; a failed discovery is retried on the next login.
import * as client from "openid-client";
import type { Database, Tx } from "../../db/client.ts";
import type { Config } from "../../config/index.ts";
import { AppError, defineErrors, validationError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/crypto.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { systemActor } from "./principal.ts";
import { ROLES, type Role } from "./permissions.ts";
import type { IdentityRepo, UserRow } from "./identity.repo.ts";
import type { AccountsService, ClientInfo, IssuedTokens } from "./accounts.service.ts";

export const OIDC_ERRORS = defineErrors({
  OIDC_NOT_CONFIGURED: { status: 404, title: "Single sign-on is not configured" },
  OIDC_STATE_INVALID: { status: 400, title: "Login attempt not recognised" },
  OIDC_LOGIN_FAILED: { status: 401, title: "Single sign-on failed" },
  OIDC_NO_ROLE: { status: 403, title: "No role for this identity" },
  OIDC_PROVIDER_UNAVAILABLE: { status: 502, title: "Identity provider unavailable" },
  OIDC_MISCONFIGURED: { status: 503, title: "Single sign-on is misconfigured" },
});

/** How long a started login may take at the provider before its callback is refused. */
export const OIDC_LOGIN_TTL_SECONDS = 600;
/** Provider metadata is refreshed this often (a failed refresh keeps the last good copy). */
const REDISCOVER_MS = 24 * 3600 * 1000;
/** Seconds any one request to the provider may take. */
const PROVIDER_TIMEOUT_SECONDS = 10;
const MAX_RETURN_TO = 512;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** return_to must stay on this site: a single leading "/" (not "//" or "/\"), no control characters. */
export const isSafeReturnTo = (value: string): boolean =>
  value.length > 0 && value.length <= MAX_RETURN_TO && value.startsWith("/") && !/^\/[/\\]/.test(value) && !/[\u0000-\u001f\u007f\\]/.test(value);

/** Short, printable text from a provider-controlled field, safe to put in an audit entry or a problem. */
const printable = (value: unknown, max: number): string | undefined =>
  typeof value === "string" ? value.replace(/[^\x20-\x7e]/g, "?").slice(0, max) : undefined;

/** A claim by exact name first (URL-named claims contain dots), then as a dotted path (Keycloak's realm_access.roles). */
const claimAt = (claims: Record<string, unknown>, name: string): unknown => {
  if (name in claims) return claims[name];
  let node: unknown = claims;
  for (const part of name.split(".")) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
};

const claimValues = (value: unknown): string[] =>
  typeof value === "string" ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];

/** The highest role any claim value maps to, or undefined when none does. */
export const mapRole = (values: readonly string[], mapping: readonly string[]): Role | undefined => {
  let best = -1;
  for (const entry of mapping) {
    const at = entry.lastIndexOf("=");
    const rank = ROLES.indexOf(entry.slice(at + 1) as Role);
    if (rank > best && values.includes(entry.slice(0, at))) best = rank;
  }
  return best >= 0 ? ROLES[best] : undefined;
};

type Deps = {
  db: Database;
  repo: IdentityRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  config: Config;
  accounts: Pick<AccountsService, "provisionOidcUser" | "startSession">;
  log?: { warn(obj: object, msg: string): void };
};

export type CallbackQuery = { code?: string | undefined; state?: string | undefined; error?: string | undefined; error_description?: string | undefined };

export const oidcService = ({ db, repo, audit, clock, config, accounts, log }: Deps) => {
  const settings = config.auth.oidc;
  const issuer = settings.issuer;
  const configured = Boolean(issuer && settings.clientId);
  const redirectUri = settings.redirectUri ?? (config.publicUrl ? `${config.publicUrl.replace(/\/+$/, "")}/auth/oidc/callback` : undefined);
  const actor = systemActor("oidc");

  // Plain http to the provider only on the loopback interface (development, tests) or when the operator
  // explicitly allowed insecure http; anywhere else the client secret and codes would cross the network in clear.
  const issuerUrl = issuer ? new URL(issuer) : undefined;
  const insecure = issuerUrl?.protocol === "http:";
  const insecureAllowed = insecure && (LOOPBACK_HOSTS.has(issuerUrl!.hostname) || config.http.allowInsecureHttp);
  if (insecure && !insecureAllowed)
    log?.warn({ issuer }, "auth.oidc.issuer uses http on a non-loopback host; single sign-on is refused until it uses https (or http.allowInsecureHttp is set)");

  // Basic when the provider supports it (the spec's default), otherwise form-post; a client without a
  // secret is a public client (PKCE alone). Decided per request from the discovered metadata, so
  // discovery does not have to happen twice.
  const secret = settings.clientSecret;
  const basic = secret ? client.ClientSecretBasic(secret) : undefined;
  const post = secret ? client.ClientSecretPost(secret) : undefined;
  const none = client.None();
  const clientAuth: client.ClientAuth = (as, c, body, headers) => {
    const methods = as.token_endpoint_auth_methods_supported;
    (!basic || !post ? none : !methods || methods.includes("client_secret_basic") ? basic : post)(as, c, body, headers);
  };

  let discovered: { config: client.Configuration; at: number } | undefined;
  let pending: Promise<client.Configuration> | undefined;

  const providerConfig = async (): Promise<client.Configuration> => {
    if (!configured) throw OIDC_ERRORS.OIDC_NOT_CONFIGURED("single sign-on is not configured on this server (auth.oidc.issuer)");
    if (insecure && !insecureAllowed)
      throw OIDC_ERRORS.OIDC_MISCONFIGURED("the configured issuer uses plain http on a non-loopback host; use https (or set http.allowInsecureHttp)");
    const now = clock.now().getTime();
    if (discovered && now - discovered.at < REDISCOVER_MS) return discovered.config;
    // Concurrent first logins share one discovery request.
    pending ??= client
      .discovery(issuerUrl!, settings.clientId!, secret ? { client_secret: secret } : {}, clientAuth, {
        timeout: PROVIDER_TIMEOUT_SECONDS,
        ...(insecureAllowed ? { execute: [client.allowInsecureRequests] } : {}),
      })
      .then((c) => {
        discovered = { config: c, at: clock.now().getTime() };
        return c;
      })
      .finally(() => {
        pending = undefined;
      });
    try {
      return await pending;
    } catch (error) {
      log?.warn({ issuer, err: errorSummary(error) }, "OIDC discovery failed; retried on the next login");
      if (discovered) return discovered.config;
      throw OIDC_ERRORS.OIDC_PROVIDER_UNAVAILABLE(`the identity provider at ${issuer} could not be reached or answered unexpectedly; try again shortly`, { issuer });
    }
  };

  /** Starts a login: a fresh state, nonce and PKCE verifier (kept server-side), and the provider URL to send the browser to. */
  const startLogin = async (returnTo?: string): Promise<string> => {
    if (returnTo !== undefined && !isSafeReturnTo(returnTo))
      throw validationError([{ path: "return_to", message: "must be a relative path on this site, starting with a single /" }]);
    const provider = await providerConfig();
    if (!redirectUri) throw OIDC_ERRORS.OIDC_MISCONFIGURED("no redirect URI: set auth.oidc.redirectUri or publicUrl");
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    // return_to rides in the state itself: only its hash is stored, so it cannot be altered in flight
    // without the state no longer matching.
    const state = returnTo ? `${client.randomState()}.${Buffer.from(returnTo).toString("base64url")}` : client.randomState();
    const now = clock.now();
    await db.transaction(async (tx) => {
      await repo.pruneOidcLogins(now, tx);
      await repo.insertOidcLogin({ stateHash: sha256Hex(state), codeVerifier: verifier, nonce, createdAt: now, expiresAt: new Date(now.getTime() + OIDC_LOGIN_TTL_SECONDS * 1000) }, tx);
    });
    return client.buildAuthorizationUrl(provider, {
      redirect_uri: redirectUri,
      scope: settings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    }).href;
  };

  const returnToOf = (state: string): string | null => {
    const dot = state.indexOf(".");
    if (dot < 0) return null;
    const value = Buffer.from(state.slice(dot + 1), "base64url").toString("utf8");
    return isSafeReturnTo(value) ? value : null;
  };

  const fail = async (reason: string, target: { type: string; id: string }, info: ClientInfo, error: AppError, details: Record<string, unknown> = {}): Promise<never> => {
    await db.transaction(async (tx) => {
      await audit.append(tx, actor, { action: "identity.login.failed", target, details: { method: "oidc", reason, ip: info.ip, ...details } });
    });
    throw error;
  };

  /** Completes a login from the provider's redirect: one use per state, then code exchange, claims, role, session. */
  const finishLogin = async (query: CallbackQuery, rawQuery: string, clientInfo: ClientInfo): Promise<IssuedTokens & { return_to: string | null }> => {
    if (!configured) throw OIDC_ERRORS.OIDC_NOT_CONFIGURED("single sign-on is not configured on this server (auth.oidc.issuer)");
    const state = query.state;
    const restart = "start again from /auth/oidc/login";
    if (!state) return fail("state_missing", { type: "oidc_login", id: "none" }, clientInfo, OIDC_ERRORS.OIDC_STATE_INVALID(`the callback carries no state; ${restart}`));
    const stateHash = sha256Hex(state);
    const attempt = { type: "oidc_login", id: stateHash.slice(0, 16) };
    // Taken (deleted) in its own statement before anything else can fail: a state is good for one callback.
    const row = await repo.takeOidcLogin(stateHash);
    if (!row) return fail("state_unknown", attempt, clientInfo, OIDC_ERRORS.OIDC_STATE_INVALID(`this login is unknown or was already completed; ${restart}`));
    const now = clock.now();
    if (row.expiresAt <= now)
      return fail("state_expired", attempt, clientInfo, OIDC_ERRORS.OIDC_STATE_INVALID(`this login was started more than ${OIDC_LOGIN_TTL_SECONDS / 60} minutes ago; ${restart}`));
    if (query.error) {
      const code = printable(query.error, 64);
      return fail("provider_error", attempt, clientInfo, OIDC_ERRORS.OIDC_LOGIN_FAILED(`the identity provider refused the login (${code}); ${restart}`, { provider_error: code }), {
        provider_error: code,
        provider_error_description: printable(query.error_description, 200),
      });
    }
    if (!query.code) return fail("code_missing", attempt, clientInfo, OIDC_ERRORS.OIDC_LOGIN_FAILED(`the callback carries neither a code nor an error; ${restart}`));

    let provider: client.Configuration;
    try {
      provider = await providerConfig();
    } catch (error) {
      return fail("provider_unavailable", attempt, clientInfo, error as AppError);
    }
    const currentUrl = new URL(redirectUri!);
    currentUrl.search = rawQuery;
    let claims: Record<string, unknown>;
    let subject: string;
    let tokenIssuer: string;
    try {
      const tokens = await client.authorizationCodeGrant(provider, currentUrl, { pkceCodeVerifier: row.codeVerifier, expectedState: state, expectedNonce: row.nonce });
      const idClaims = tokens.claims()!;
      subject = idClaims.sub;
      tokenIssuer = idClaims.iss;
      claims = { ...idClaims };
      // Many providers keep profile and group claims out of the ID token in the code flow; UserInfo has them.
      const missing = claimAt(claims, settings.roleClaim) === undefined || claimAt(claims, settings.usernameClaim) === undefined;
      if (missing && provider.serverMetadata().userinfo_endpoint) {
        const info = await client.fetchUserInfo(provider, tokens.access_token, subject);
        claims = { ...info, ...idClaims };
      }
    } catch (error) {
      const unavailable = isUnavailable(error);
      log?.warn({ issuer, err: errorSummary(error) }, unavailable ? "OIDC provider unreachable during a callback" : "OIDC code exchange or token validation failed");
      const providerError = error instanceof client.ResponseBodyError ? printable(error.error, 64) : undefined;
      return fail(
        unavailable ? "provider_unavailable" : providerError ? "provider_error" : "token_invalid",
        attempt,
        clientInfo,
        unavailable
          ? OIDC_ERRORS.OIDC_PROVIDER_UNAVAILABLE(`the identity provider could not be reached to complete the login; ${restart}`)
          : OIDC_ERRORS.OIDC_LOGIN_FAILED(`the identity provider's answer could not be accepted${providerError ? ` (${providerError})` : ""}; ${restart}`),
        { ...(providerError ? { provider_error: providerError } : {}), ...(unavailable ? {} : { check: printable((error as { code?: unknown }).code, 64) ?? printable((error as Error).name, 64) }) },
      );
    }

    const groups = claimValues(claimAt(claims, settings.roleClaim));
    const mapped = mapRole(groups, settings.roleMapping);
    const role = mapped ?? settings.defaultRole;
    const nameClaim = claimAt(claims, settings.usernameClaim);
    const username = typeof nameClaim === "string" && nameClaim ? nameClaim : typeof claims.email === "string" ? claims.email : subject;
    const who = { issuer: tokenIssuer, subject, username: printable(username, 128) };
    if (!role)
      return fail(
        "no_role",
        { type: "oidc_subject", id: subject.slice(0, 255) },
        clientInfo,
        OIDC_ERRORS.OIDC_NO_ROLE(`your identity provider account is in no group that maps to a Portcullis role (claim ${settings.roleClaim}); ask an administrator to grant access`),
        { ...who, role_claim: settings.roleClaim, claim_values: groups.slice(0, 20).map((g) => printable(g, 128)) },
      );

    const outcome = await db.transaction(async (tx: Tx): Promise<{ user: UserRow; issued?: IssuedTokens }> => {
      const user = await accounts.provisionOidcUser(tx, { issuer: tokenIssuer, subject, username, role });
      if (user.disabled || user.kind !== "human") {
        await audit.append(tx, actor, { action: "identity.login.failed", target: { type: "user", id: user.id }, details: { method: "oidc", reason: "user_disabled", ip: clientInfo.ip, ...who } });
        return { user };
      }
      const fresh = (await repo.updateUser(user.id, { lastLoginAt: now }, tx))!;
      const issued = await accounts.startSession(tx, fresh, "oidc", clientInfo);
      await audit.append(tx, actor, {
        action: "identity.login.succeeded",
        target: { type: "user", id: user.id },
        details: { method: "oidc", session_id: issued.session_id, ip: clientInfo.ip, issuer: tokenIssuer, role: fresh.role, mapped_from: mapped ? "claims" : "default_role" },
      });
      return { user: fresh, issued };
    });
    if (!outcome.issued) throw OIDC_ERRORS.OIDC_LOGIN_FAILED(`the account ${outcome.user.username} is disabled; ask an administrator`);
    return { ...outcome.issued, return_to: returnToOf(state) };
  };

  return { configured, redirectUri, startLogin, finishLogin };
};
export type OidcService = ReturnType<typeof oidcService>;

/** Network failures and provider 5xx answers, as opposed to a provider that answered and said no. */
const isUnavailable = (error: unknown): boolean => {
  if (error instanceof client.ResponseBodyError) return error.status >= 500;
  if (error instanceof client.ClientError) return error.code === "OAUTH_RESPONSE_IS_NOT_CONFORM" || error.code === "OAUTH_RESPONSE_IS_NOT_JSON";
  if (error instanceof TypeError) return !String((error as { code?: unknown }).code ?? "").startsWith("ERR_INVALID_ARG");
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
};

/** What is worth logging about a provider failure: never the response body, which may carry tokens. */
const errorSummary = (error: unknown) => {
  if (!(error instanceof Error)) return { message: String(error).slice(0, 200) };
  const cause = (error as { cause?: unknown }).cause;
  return {
    name: error.name,
    message: error.message.slice(0, 300),
    code: (error as { code?: unknown }).code,
    ...(error instanceof client.ResponseBodyError ? { status: error.status, error: error.error } : {}),
    ...(cause instanceof Error ? { cause: `${cause.name}: ${cause.message.slice(0, 200)}` } : {}),
  };
};
