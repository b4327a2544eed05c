// OIDC single sign-on end to end against a real oidc-provider on 127.0.0.1: discovery, redirect with
// PKCE, login and consent at the provider over real HTTP, callback, session; plus replayed, tampered and
// expired states, unmapped groups, disabled users, an unreachable provider, and no secrets in audit or logs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
// @ts-expect-error oidc-provider ships no type declarations; the little used here is typed below.
import { Provider as UntypedProvider } from "oidc-provider";
import { createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";

const CLIENT_ID = "portcullis";
const CLIENT_SECRET = "oidc-test-client-secret-0123456789abcdef";
// Our app is only ever injected into; the provider never calls this address, it redirects the "browser" (the test) to it.
const APP_URL = "http://127.0.0.1:8443";
const REDIRECT = `${APP_URL}/auth/oidc/callback`;

type Account = { preferred_username: string; email: string; groups: string[] };
const accounts = new Map<string, Account>([
  ["alice", { preferred_username: "alice", email: "alice@example.test", groups: ["soc", "soc-admins"] }],
  ["mallory", { preferred_username: "mallory", email: "mallory@example.test", groups: ["contractors"] }],
  ["dave", { preferred_username: "dave", email: "dave@example.test", groups: ["soc"] }],
]);

type OidcProvider = { callback(): (req: IncomingMessage, res: ServerResponse) => void };
const Provider = UntypedProvider as new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

type RunningProvider = { issuer: string; port: number; close(): Promise<void> };

/** A real oidc-provider (dev interactions) listening on 127.0.0.1; `port` 0 picks a free one. */
const startProvider = async (port = 0): Promise<RunningProvider> => {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const actual = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${actual}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT], response_types: ["code"], grant_types: ["authorization_code"] }],
    claims: { openid: ["sub"], profile: ["preferred_username"], email: ["email"], groups: ["groups"] },
    // The provider refuses any authorization request without a PKCE challenge.
    pkce: { required: () => true },
    cookies: { keys: ["oidc-test-cookie-signing-key-0123456789"] },
    features: { devInteractions: { enabled: true } },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = accounts.get(sub);
      return account ? { accountId: sub, claims: async () => ({ sub, ...account }) } : undefined;
    },
  });
  server.on("request", provider.callback());
  return {
    issuer,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

/** Just enough of a browser's cookie jar for the provider's interaction and session cookies. */
class Browser {
  private cookies = new Map<string, { name: string; value: string; path: string }>();

  async fetch(url: URL, init: { method?: string; body?: URLSearchParams } = {}): Promise<Response> {
    const cookie = [...this.cookies.values()]
      .filter((c) => url.pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
    const res = await fetch(url, {
      method: init.method ?? "GET",
      redirect: "manual",
      headers: { ...(cookie ? { cookie } : {}), ...(init.body ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      ...(init.body ? { body: init.body.toString() } : {}),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";").map((s) => s.trim());
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const path = attrs.find((a) => a.toLowerCase().startsWith("path="))?.slice(5) || "/";
      const expires = attrs.find((a) => a.toLowerCase().startsWith("expires="))?.slice(8);
      const gone = !value || (expires !== undefined && new Date(expires).getTime() < Date.now()) || attrs.some((a) => /^max-age=0$/i.test(a));
      if (gone) this.cookies.delete(`${name} ${path}`);
      else this.cookies.set(`${name} ${path}`, { name, value, path });
    }
    return res;
  }
}

/** Follows the provider from the authorization URL through login and consent to the redirect back to us. */
const loginAtProvider = async (authorizationUrl: URL, login: string, browser = new Browser()): Promise<URL> => {
  let url = authorizationUrl;
  let method = "GET";
  let body: URLSearchParams | undefined;
  const seen: string[] = [];
  for (let step = 0; step < 12; step++) {
    const res = await browser.fetch(url, { method, ...(body ? { body } : {}) });
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get("location")!, url);
      if (next.href.startsWith(REDIRECT)) return next;
      [url, method, body] = [next, "GET", undefined];
      continue;
    }
    const html = await res.text();
    expect(res.status, html.slice(0, 500)).toBe(200);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    expect(action, html.slice(0, 500)).toBeTruthy();
    seen.push(prompt!);
    body = prompt === "login" ? new URLSearchParams({ prompt: "login", login, password: "anything" }) : new URLSearchParams({ prompt: "consent" });
    [url, method] = [new URL(action!.replace(/&amp;/g, "&"), url), "POST"];
  }
  throw new Error(`the provider never redirected back (prompts seen: ${seen.join(", ")})`);
};

let provider: RunningProvider;
beforeAll(async () => {
  provider = await startProvider();
});
afterAll(async () => provider?.close());

const ssoConfig = (issuer: string, extra: Record<string, unknown> = {}) => ({
  publicUrl: APP_URL,
  "auth.oidc.issuer": issuer,
  "auth.oidc.clientId": CLIENT_ID,
  "auth.oidc.clientSecret": CLIENT_SECRET,
  "auth.oidc.scopes": "openid profile email groups",
  "auth.oidc.roleMapping": ["soc-admins=admin", "soc=analyst"],
  ...extra,
});

describe.each(DB_KINDS)("OIDC single sign-on on %s", (kind) => {
  let t: TestApp;
  // Our clock runs at real time (the provider's tokens are checked against it) plus an offset the expiry test moves.
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };
  // Everything secret the flow handled, to scan the audit log and the app logs for.
  const secrets = new Set<string>([CLIENT_SECRET]);

  beforeAll(async () => {
    // Info level so the request log lines (which carry the callback's URL) are part of the leak scan.
    t = await createTestApp(kind, { config: ssoConfig(provider.issuer, { "log.level": "info" }), clock });
  });
  afterAll(async () => t?.close());

  const startLogin = async (query = "") => {
    const res = await t.app.inject({ method: "GET", url: `/auth/oidc/login${query}` });
    expect(res.statusCode, res.body).toBe(302);
    const location = new URL(res.headers.location as string);
    const state = location.searchParams.get("state")!;
    secrets.add(state);
    // The verifier lives only in our database until the callback.
    const rows = await t.db.query<{ code_verifier: string }>("SELECT code_verifier FROM oidc_logins");
    for (const row of rows) secrets.add(row.code_verifier);
    return { location, state };
  };

  const callback = async (url: URL) => {
    const code = url.searchParams.get("code");
    if (code) secrets.add(code);
    const res = await t.app.inject({ method: "GET", url: `${url.pathname}${url.search}`, headers: { "user-agent": "oidc-test" } });
    if (res.statusCode === 200) {
      secrets.add(res.json().access_token);
      secrets.add(res.json().refresh_token);
    }
    return res;
  };

  const fullLogin = async (login: string, query = "") => {
    const { location } = await startLogin(query);
    const back = await loginAtProvider(location, login);
    return { back, res: await callback(back) };
  };

  const auditEntries = async () => {
    const res = await t.app.inject({ method: "GET", url: "/audit/entries?limit=1000", headers: t.auth() });
    expect(res.statusCode).toBe(200);
    return { body: res.body, items: res.json().items as { action: string; target: { type: string; id: string } | null; details: Record<string, unknown> | null; after: Record<string, unknown> | null }[] };
  };

  it("sends the browser to the provider with PKCE (S256), state and nonce, storing only the state's hash", async () => {
    const { location, state } = await startLogin();
    expect(location.origin).toBe(provider.issuer);
    expect(location.pathname).toBe("/auth");
    const q = location.searchParams;
    expect(q.get("response_type")).toBe("code");
    expect(q.get("client_id")).toBe(CLIENT_ID);
    expect(q.get("redirect_uri")).toBe(REDIRECT);
    expect(q.get("scope")).toBe("openid profile email groups");
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(state.length).toBeGreaterThanOrEqual(32);
    expect(q.get("nonce")!.length).toBeGreaterThanOrEqual(32);
    // Only the state's hash is stored.
    const stored = (await t.db.query<{ state_hash: string }>("SELECT state_hash FROM oidc_logins")).map((r) => r.state_hash);
    expect(stored).not.toContain(state);
  });

  let aliceId = "";
  it("logs a new user in end to end: provider login and consent, callback, tokens, a working session with the mapped role", async () => {
    const { back, res } = await fullLogin("alice");
    expect(back.searchParams.get("code")).toBeTruthy();
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const tokens = res.json();
    expect(tokens).toMatchObject({ token_type: "Bearer", password_change_required: false, return_to: null });
    const who = await t.app.inject({ method: "GET", url: "/auth/whoami", headers: t.auth(tokens.access_token) });
    expect(who.statusCode).toBe(200);
    // groups soc and soc-admins: the highest mapped role wins.
    expect(who.json()).toMatchObject({ kind: "user", username: "alice", role: "admin", via: "session", session_id: tokens.session_id });
    aliceId = who.json().id;
    const user = await t.app.inject({ method: "GET", url: `/users/${aliceId}`, headers: t.auth() });
    expect(user.json()).toMatchObject({ username: "alice", auth: "oidc", created_by: "system:oidc", role: "admin" });
    const sessions = await t.app.inject({ method: "GET", url: "/auth/sessions", headers: t.auth(tokens.access_token) });
    expect(sessions.json().items).toMatchObject([{ id: tokens.session_id, auth_method: "oidc", user_agent: "oidc-test" }]);
    // The refresh token works like a password session's.
    const refreshed = await t.app.inject({ method: "POST", url: "/auth/refresh", payload: { refresh_token: tokens.refresh_token } });
    expect(refreshed.statusCode).toBe(200);
    secrets.add(refreshed.json().access_token);
    secrets.add(refreshed.json().refresh_token);

    const { items } = await auditEntries();
    const provisioned = items.find((e) => e.action === "identity.user.provisioned" && e.target?.id === aliceId);
    expect(provisioned?.after).toMatchObject({ username: "alice", role: "admin", issuer: `${provider.issuer}`, subject: "alice" });
    const succeeded = items.find((e) => e.action === "identity.login.succeeded" && e.target?.id === aliceId);
    expect(succeeded?.details).toMatchObject({ method: "oidc", session_id: tokens.session_id, role: "admin" });
  });

  it("reuses the same user on the next login and re-applies a changed group mapping", async () => {
    accounts.get("alice")!.groups = ["soc"];
    try {
      const { res } = await fullLogin("alice");
      expect(res.statusCode, res.body).toBe(200);
      const who = await t.app.inject({ method: "GET", url: "/auth/whoami", headers: t.auth(res.json().access_token) });
      expect(who.json()).toMatchObject({ id: aliceId, username: "alice", role: "analyst" });
      const users = await t.app.inject({ method: "GET", url: "/users", headers: t.auth() });
      expect(users.json().items.filter((u: { username: string }) => u.username === "alice")).toHaveLength(1);
      const { items } = await auditEntries();
      const changed = items.filter((e) => e.action === "identity.user.role_changed" && e.target?.id === aliceId);
      expect(changed.at(-1)?.details).toMatchObject({ source: "oidc_claims" });
    } finally {
      accounts.get("alice")!.groups = ["soc", "soc-admins"];
    }
  });

  it("refuses a replayed callback: each state is good for one callback", async () => {
    const { back, res } = await fullLogin("dave");
    expect(res.statusCode, res.body).toBe(200);
    const replay = await callback(back);
    expect(replay.statusCode).toBe(400);
    expect(replay.headers["content-type"]).toContain("application/problem+json");
    expect(replay.json()).toMatchObject({ code: "OIDC_STATE_INVALID", status: 400 });
    const { items } = await auditEntries();
    expect(items.some((e) => e.action === "identity.login.failed" && e.details?.reason === "state_unknown")).toBe(true);
  });

  it("refuses a tampered or missing state, and the real callback still works afterwards", async () => {
    const { location } = await startLogin();
    const back = await loginAtProvider(location, "dave");
    const tampered = new URL(back);
    tampered.searchParams.set("state", `${back.searchParams.get("state")}x`);
    const bad = await callback(tampered);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe("OIDC_STATE_INVALID");
    const none = new URL(back);
    none.searchParams.delete("state");
    const missing = await callback(none);
    expect(missing.statusCode).toBe(400);
    expect(missing.json().code).toBe("OIDC_STATE_INVALID");
    const good = await callback(back);
    expect(good.statusCode, good.body).toBe(200);
  });

  it("refuses an expired state (older than 10 minutes) and consumes it", async () => {
    const { state } = await startLogin();
    offsetMs = 11 * 60 * 1000;
    try {
      const res = await t.app.inject({ method: "GET", url: `/auth/oidc/callback?code=whatever&state=${encodeURIComponent(state)}` });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: "OIDC_STATE_INVALID" });
      expect(res.json().detail).toContain("10 minutes");
    } finally {
      offsetMs = 0;
    }
    const again = await t.app.inject({ method: "GET", url: `/auth/oidc/callback?code=whatever&state=${encodeURIComponent(state)}` });
    expect(again.json().detail).toContain("unknown or was already completed");
    const { items } = await auditEntries();
    expect(items.some((e) => e.action === "identity.login.failed" && e.details?.reason === "state_expired")).toBe(true);
  });

  it("refuses a user whose groups map to no role (no defaultRole) with OIDC_NO_ROLE, audited, nobody provisioned", async () => {
    const { res } = await fullLogin("mallory");
    expect(res.statusCode).toBe(403);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    expect(res.json()).toMatchObject({ code: "OIDC_NO_ROLE", status: 403 });
    const users = await t.app.inject({ method: "GET", url: "/users", headers: t.auth() });
    expect(users.json().items.some((u: { username: string }) => u.username === "mallory")).toBe(false);
    const { items } = await auditEntries();
    const failed = items.find((e) => e.action === "identity.login.failed" && e.details?.reason === "no_role");
    expect(failed?.target).toEqual({ type: "oidc_subject", id: "mallory" });
    expect(failed?.details).toMatchObject({ method: "oidc", role_claim: "groups", claim_values: ["contractors"], username: "mallory" });
  });

  it("passes a provider's error back as a problem and audits it", async () => {
    const { state } = await startLogin();
    const res = await t.app.inject({ method: "GET", url: `/auth/oidc/callback?error=access_denied&error_description=End-User+aborted&state=${encodeURIComponent(state)}` });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: "OIDC_LOGIN_FAILED", provider_error: "access_denied" });
    const { items } = await auditEntries();
    expect(items.some((e) => e.action === "identity.login.failed" && e.details?.reason === "provider_error" && e.details?.provider_error === "access_denied")).toBe(true);
  });

  it("refuses a code the provider does not accept, and a callback without the provider's iss", async () => {
    const { state } = await startLogin();
    const bogus = await t.app.inject({ method: "GET", url: `/auth/oidc/callback?code=not-a-real-code&state=${encodeURIComponent(state)}&iss=${encodeURIComponent(provider.issuer)}` });
    expect(bogus.statusCode).toBe(401);
    expect(bogus.json()).toMatchObject({ code: "OIDC_LOGIN_FAILED" });
    expect(bogus.json().detail).toContain("invalid_grant");
    const second = await startLogin();
    // The provider advertises RFC 9207 iss in responses; a response without it is not accepted.
    const noIss = await t.app.inject({ method: "GET", url: `/auth/oidc/callback?code=not-a-real-code&state=${encodeURIComponent(second.state)}` });
    expect(noIss.statusCode).toBe(401);
    expect(noIss.json()).toMatchObject({ code: "OIDC_LOGIN_FAILED" });
    const { items } = await auditEntries();
    expect(items.some((e) => e.action === "identity.login.failed" && e.details?.reason === "provider_error" && e.details?.provider_error === "invalid_grant")).toBe(true);
    expect(items.some((e) => e.action === "identity.login.failed" && e.details?.reason === "token_invalid")).toBe(true);
  });

  it("does not answer HEAD on the login endpoints (a prefetch must not spend a state)", async () => {
    for (const url of ["/auth/oidc/login", "/auth/oidc/callback?code=a&state=b"]) {
      const res = await t.app.inject({ method: "HEAD", url });
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, url).toBeLessThan(500);
    }
  });

  it("refuses a disabled user, audited", async () => {
    const disable = await t.app.inject({ method: "POST", url: `/users/${aliceId}/disable`, headers: t.auth() });
    expect(disable.statusCode, disable.body).toBe(200);
    try {
      const { res } = await fullLogin("alice");
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe("OIDC_LOGIN_FAILED");
      const { items } = await auditEntries();
      expect(items.some((e) => e.action === "identity.login.failed" && e.details?.reason === "user_disabled" && e.target?.id === aliceId)).toBe(true);
    } finally {
      await t.app.inject({ method: "POST", url: `/users/${aliceId}/enable`, headers: t.auth() });
    }
  });

  it("carries a relative return_to through the login and refuses anything else", async () => {
    for (const bad of ["//evil.example/x", "https://evil.example/", "/\\evil.example", "relative"]) {
      const res = await t.app.inject({ method: "GET", url: `/auth/oidc/login?return_to=${encodeURIComponent(bad)}` });
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().code).toBe("VALIDATION_FAILED");
    }
    const { res } = await fullLogin("dave", `?return_to=${encodeURIComponent("/incidents/42?tab=evidence")}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().return_to).toBe("/incidents/42?tab=evidence");
  });

  it("answers junk callbacks with problems, never 500", async () => {
    for (const query of ["", "?state=", "?code=a&code=b&state=c", `?state=${"s".repeat(5000)}`, "?state=%00", "?error=%ff%fe&state=zz"]) {
      const res = await t.app.inject({ method: "GET", url: `/auth/oidc/callback${query}` });
      expect(res.statusCode, query).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, query).toBeLessThan(500);
      expect(res.headers["content-type"]).toContain("application/problem+json");
    }
  });

  it("writes no code, state, verifier, token or client secret to the audit log or the app logs", async () => {
    const { body } = await auditEntries();
    const logs = t.logs.join("\n");
    expect(secrets.size).toBeGreaterThan(10);
    expect(logs).toContain("/auth/oidc/callback?[redacted]");
    for (const secret of secrets) {
      expect(body.includes(secret), "audit log").toBe(false);
      expect(logs.includes(secret), "app logs").toBe(false);
    }
  });
});

describe.each(DB_KINDS)("OIDC availability on %s", (kind) => {
  it("answers 404 OIDC_NOT_CONFIGURED when no issuer is configured", async () => {
    const t = await createTestApp(kind);
    try {
      for (const url of ["/auth/oidc/login", "/auth/oidc/callback?code=a&state=b"]) {
        const res = await t.app.inject({ method: "GET", url });
        expect(res.statusCode, url).toBe(404);
        expect(res.json().code).toBe("OIDC_NOT_CONFIGURED");
      }
    } finally {
      await t.close();
    }
  });

  it("starts while the provider is down, answers a clear 502 problem, and discovers once it is back", async () => {
    // A port nothing listens on (yet).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const t = await createTestApp(kind, { config: ssoConfig(`http://127.0.0.1:${port}`) });
    let late: RunningProvider | undefined;
    try {
      const down = await t.app.inject({ method: "GET", url: "/auth/oidc/login" });
      expect(down.statusCode).toBe(502);
      expect(down.headers["content-type"]).toContain("application/problem+json");
      expect(down.json()).toMatchObject({ code: "OIDC_PROVIDER_UNAVAILABLE", status: 502 });
      expect(t.logs.join("\n")).toContain("OIDC discovery failed");
      late = await startProvider(port);
      const up = await t.app.inject({ method: "GET", url: "/auth/oidc/login" });
      expect(up.statusCode, up.body).toBe(302);
      const state = new URL(up.headers.location as string).searchParams.get("state")!;
      expect(new URL(up.headers.location as string).origin).toBe(late.issuer);
      // Discovered, then gone again before the callback: the code exchange cannot reach it.
      await late.close();
      late = undefined;
      const gone = await t.app.inject({ method: "GET", url: `/auth/oidc/callback?code=x&state=${encodeURIComponent(state)}&iss=${encodeURIComponent(`http://127.0.0.1:${port}`)}` });
      expect(gone.statusCode).toBe(502);
      expect(gone.json()).toMatchObject({ code: "OIDC_PROVIDER_UNAVAILABLE" });
    } finally {
      await late?.close();
      await t.close();
    }
  });
});
