// Identity through the HTTP API, part two: API keys (shown once, stored hashed, never more than the
// creator holds, revocation and expiry that say which key by prefix, last use), service accounts,
// user administration (duplicates, last-admin guard, disabling, role changes) and oversized or
// malformed credentials. Every suite ends by scanning the audit log and the logs for secrets.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createHash } from "node:crypto";
import { createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { manualClock } from "../src/lib/time.ts";
import { tools, type Tokens } from "./helpers/identity-tools.ts";

const FAST = { "auth.argon2MemoryKiB": 8192, "auth.argon2Iterations": 1 };
const DAY = 86_400_000;
const VIEWER_PERMISSIONS = ["actions:read", "audit:read", "blocklist:check", "blocklist:read", "events:read", "keys:own", "policy:read", "rules:read"];
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");


/** A problem body with its per-request fields blanked, for byte comparison. */
const anonymous = (body: string) => {
  const { requestId } = JSON.parse(body) as { requestId: string };
  return body.replace(requestId, "<request>");
};
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");


describe.each(DB_KINDS)("identity: API keys on %s", (kind) => {
  let t: TestApp;
  const clock = manualClock("2026-06-01T00:00:00.000Z");
  const x = tools(() => t, { leaves: 2, secrets: 0 });
  const KIM = "Keys-Passw0rd-K";
  let kim: Tokens;
  beforeAll(async () => {
    t = await createTestApp(kind, { clock, config: FAST });
    await x.createUser("kim", "viewer", KIM);
    kim = await x.loginOk("kim", KIM);
  });
  afterAll(async () => t?.close());

  const createKey = async (body: Record<string, unknown>, token: string | undefined = kim.access_token) => {
    const res = await x.post("/auth/keys", body, token);
    if (res.statusCode === 201) x.keep(res.json().key);
    return res;
  };
  const createdKey = async (body: Record<string, unknown>, token?: string) => {
    const res = await createKey(body, token);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Record<string, any> & { id: string; key: string; prefix: string };
  };

  it("creates a key that is shown once: pc_ + 32 random bytes, stored as SHA-256 beside its visible prefix", async () => {
    const key = await createdKey({ name: "laptop" });
    expect(key.key).toMatch(/^pc_[A-Za-z0-9_-]{43}$/);
    expect(key).toMatchObject({
      name: "laptop",
      owner: "kim",
      role: "viewer",
      permissions: null,
      effective_permissions: VIEWER_PERMISSIONS,
      status: "active",
      created_by: "kim",
      expires_at: new Date(clock.now().getTime() + 90 * DAY).toISOString(),
      last_used_at: null,
      revoked_at: null,
    });
    expect(key.prefix).toBe(key.key.slice(0, 11));
    const rows = await t.db.query<Record<string, unknown>>("SELECT * FROM api_keys WHERE id = $1", [key.id]);
    expect(rows[0]!.key_hash).toBe(sha256(key.key));
    expect(rows[0]!.prefix).toBe(key.prefix);
    expect(JSON.stringify(await t.db.query("SELECT * FROM api_keys"))).not.toContain(key.key.slice(11));
    const list = await x.get("/auth/keys", kim.access_token);
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((i: { id: string }) => i.id)).toEqual([key.id]);
    expect(list.json().items[0].key).toBeUndefined();
    expect(list.body).not.toContain(key.key.slice(11));
    const one = await x.get(`/auth/keys/${key.id}`, kim.access_token);
    expect(one.statusCode).toBe(200);
    expect(one.json().key).toBeUndefined();
    expect(one.body).not.toContain(key.key.slice(11));
    const who = await x.get("/auth/whoami", key.key);
    expect(who.json()).toMatchObject({ username: "kim", via: "api_key", key_prefix: key.prefix, session_id: null, user_kind: "human", permissions: VIEWER_PERMISSIONS });
    const [entry] = (await x.audit("identity.api_key.created")).filter((e) => e.target?.id === key.id);
    expect(entry).toMatchObject({ actor: { name: "kim" }, target: { type: "api_key", id: key.id }, after: { prefix: key.prefix, name: "laptop", role: "viewer", permissions: null } });
  });

  it("shows nothing of a preset bootstrap token, even one that starts with pc_", async () => {
    const [row] = await t.db.query<{ prefix: string }>("SELECT prefix FROM api_keys WHERE name = 'bootstrap admin key'");
    expect(row!.prefix).toMatch(/^sha256:[0-9a-f]{8}$/);
    expect(t.adminToken).not.toContain(row!.prefix.slice(7));
    const who = await x.get("/auth/whoami");
    expect(who.json().key_prefix).toBe(row!.prefix);
    expect(t.adminToken.slice(3, 11)).toBe("test-adm");
    const leaves = (await t.db.query<{ leaf: string }>("SELECT leaf FROM audit_log")).map((r) => r.leaf).join("\n");
    expect(leaves).not.toContain(t.adminToken.slice(0, 11));
  });

  it("never mints more than the creator holds: 403 KEY_EXCEEDS_CREATOR naming the excess", async () => {
    const created = (await x.audit("identity.api_key.created")).length;
    const write = await createKey({ name: "too much", permissions: ["blocklist:read", "blocklist:write"] });
    expect(write.statusCode).toBe(403);
    expect(write.json()).toMatchObject({ code: "KEY_EXCEEDS_CREATOR", excess_permissions: ["blocklist:write"] });
    const admin = await createKey({ name: "too much", role: "admin" });
    expect(admin.statusCode).toBe(403);
    expect(admin.json().code).toBe("KEY_EXCEEDS_CREATOR");
    expect(admin.json().excess_permissions).toContain("users:write");
    const both = await createKey({ name: "both", role: "viewer", permissions: ["policy:read"] });
    expect(both.statusCode).toBe(400);
    expect(both.json().code).toBe("VALIDATION_FAILED");
    const twoExpiries = await createKey({ name: "x", expires_at: null, expires_in_days: 1 });
    expect(twoExpiries.statusCode).toBe(400);
    expect(twoExpiries.json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "expires_in_days" }] });
    const unknown = await createKey({ name: "x", permissions: ["root:everything"] });
    expect(unknown.statusCode).toBe(400);
    expect((await x.audit("identity.api_key.created")).length, "nothing was created").toBe(created);
  });

  it("bounds a key minting a key by the minting key's own permissions", async () => {
    const check = await createdKey({ name: "bouncer", permissions: ["blocklist:check"] });
    expect(check.effective_permissions).toEqual(["blocklist:check"]);
    expect((await x.get("/auth/whoami", check.key)).json().permissions).toEqual(["blocklist:check"]);
    expect((await x.get("/security/policy/check?ip=198.51.100.7", check.key)).statusCode).toBe(200);
    expect((await x.get("/security/policy/", check.key)).statusCode).toBe(403);
    const escalate = await createKey({ name: "escalate", permissions: ["policy:read"] }, check.key);
    expect(escalate.statusCode).toBe(403);
    expect(escalate.json().code).toBe("FORBIDDEN");

    const minter = await createdKey({ name: "minter", permissions: ["keys:own", "policy:read"] });
    const narrower = await createdKey({ name: "narrower", permissions: ["policy:read"] }, minter.key);
    expect(narrower).toMatchObject({ owner: "kim", permissions: ["policy:read"], effective_permissions: ["policy:read"] });
    expect((await x.get("/security/policy/", narrower.key)).statusCode).toBe(200);
    expect((await x.get("/security/policy/blocks", narrower.key)).statusCode).toBe(403);
    const wider = await createKey({ name: "wider", permissions: ["policy:read", "blocklist:read"] }, minter.key);
    expect(wider.statusCode).toBe(403);
    expect(wider.json()).toMatchObject({ code: "KEY_EXCEEDS_CREATOR", excess_permissions: ["blocklist:read"] });
    // No list given: the owner's role (viewer) is more than the minting key holds.
    const roleDefault = await createKey({ name: "role default" }, minter.key);
    expect(roleDefault.statusCode).toBe(403);
    expect(roleDefault.json().code).toBe("KEY_EXCEEDS_CREATOR");
    const [entry] = (await x.audit("identity.api_key.created")).filter((e) => e.target?.id === narrower.id);
    expect(entry!.actor.name).toBe(`kim (key ${minter.prefix})`);
  });

  it("keeps a minted key from outliving the key that minted it", async () => {
    const shortLived = await createdKey({ name: "short", permissions: ["keys:own", "policy:read"], expires_in_days: 2 });
    const forever = await createKey({ name: "forever", permissions: ["policy:read"], expires_at: null }, shortLived.key);
    expect(forever.statusCode).toBe(403);
    expect(forever.json().code).toBe("KEY_EXCEEDS_CREATOR");
    const later = await createKey({ name: "later", permissions: ["policy:read"], expires_in_days: 30 }, shortLived.key);
    expect(later.statusCode).toBe(403);
    const child = await createdKey({ name: "default", permissions: ["policy:read"] }, shortLived.key);
    expect(child.expires_at).toBe(shortLived.expires_at);
  });

  it("refuses a revoked key with 401 API_KEY_REVOKED naming its prefix (at once, no cache clearing)", async () => {
    const key = await createdKey({ name: "to revoke" });
    expect((await x.get("/auth/whoami", key.key)).statusCode).toBe(200); // cached now
    const other = await x.createUser("ken", "viewer", "Other-Passw0rd-K");
    const ken = await x.loginOk("ken", "Other-Passw0rd-K");
    const foreign = await x.post(`/auth/keys/${key.id}/revoke`, undefined, ken.access_token);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().code).toBe("API_KEY_NOT_FOUND");
    expect((await x.get(`/auth/keys/${key.id}`, ken.access_token)).statusCode).toBe(404);
    expect(other.user.username).toBe("ken");
    const revoke = await x.post(`/auth/keys/${key.id}/revoke`, undefined, kim.access_token);
    expect(revoke.statusCode).toBe(200);
    expect(revoke.json()).toMatchObject({ status: "revoked", revoked_by: "kim", revoked_at: clock.now().toISOString() });
    const res = await x.get("/auth/whoami", key.key);
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe("API_KEY_REVOKED");
    expect(res.json().detail).toContain(key.prefix);
    expect(res.body).not.toContain(key.key.slice(11));
    expect((await x.post(`/auth/keys/${key.id}/revoke`, undefined, kim.access_token)).statusCode).toBe(200);
    const entries = (await x.audit("identity.api_key.revoked")).filter((e) => e.target?.id === key.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: { name: "kim" }, before: { status: "active" }, after: { status: "revoked", prefix: key.prefix } });
  });

  it("does not cache a lookup that began before a revocation cleared the cache (no stale principal for 5 s)", async () => {
    const key = await createdKey({ name: "racing revoke" });
    const identity = t.app.services.identity;
    identity.invalidateCache();
    // The lookup reads the database; meanwhile a revocation commits and clears the cache.
    const lookup = identity.authenticate(key.key, null);
    identity.invalidateCache();
    expect((await lookup).keyPrefix).toBe(key.prefix);
    // The revocation the invalidation announced (written here without a second invalidation).
    await t.db.query("UPDATE api_keys SET revoked_at = $1, revoked_by = 'test' WHERE id = $2", [clock.now(), key.id]);
    const res = await x.get("/auth/whoami", key.key);
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe("API_KEY_REVOKED");
  });

  it("refuses an expired key with 401 API_KEY_EXPIRED naming its prefix", async () => {
    const key = await createdKey({ name: "one day", expires_in_days: 1 });
    expect((await x.get("/auth/whoami", key.key)).statusCode).toBe(200);
    clock.advance(DAY - 1_000);
    expect((await x.get("/auth/whoami", key.key)).statusCode).toBe(200);
    clock.advance(1_000);
    kim = (await x.refresh(kim.refresh_token)).json();
    const res = await x.get("/auth/whoami", key.key);
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe("API_KEY_EXPIRED");
    expect(res.json().detail).toContain(key.prefix);
    expect((await x.get(`/auth/keys/${key.id}`, kim.access_token)).json().status).toBe("expired");
    const past = await createKey({ name: "past", expires_at: "2020-01-01T00:00:00Z" });
    expect(past.statusCode).toBe(400);
  });

  it("records when and from where a key was last used", async () => {
    const key = await createdKey({ name: "used" });
    const at = clock.now().toISOString();
    const res = await x.call("GET", "/auth/whoami", { token: key.key, ip: "203.0.113.7" });
    expect(res.statusCode).toBe(200);
    await vi.waitFor(async () => {
      const row = (await t.db.query<{ last_used_at: Date | null; last_used_ip: string | null }>("SELECT last_used_at, last_used_ip FROM api_keys WHERE id = $1", [key.id]))[0]!;
      expect(row.last_used_ip).toBe("203.0.113.7");
      expect(new Date(row.last_used_at!).toISOString()).toBe(at);
    });
    expect((await x.get(`/auth/keys/${key.id}`, kim.access_token)).json()).toMatchObject({ last_used_at: at, last_used_ip: "203.0.113.7" });
  });

  it("lets an admin create a service account and a key for it; the account cannot log in", async () => {
    const svc = await x.post("/users", { username: "svc-ingest", role: "analyst", kind: "service" });
    expect(svc.statusCode).toBe(201);
    expect(svc.json().user).toMatchObject({ username: "svc-ingest", kind: "service", auth: "api_key", role: "analyst" });
    expect(svc.json().temporary_password).toBeUndefined();
    const withPassword = await x.post("/users", { username: "svc-pw", role: "viewer", kind: "service", password: "Service-Passw0rd-1" });
    expect(withPassword.statusCode).toBe(400);
    const key = await createdKey({ name: "ingest", user: "svc-ingest" }, t.adminToken);
    expect(key).toMatchObject({ owner: "svc-ingest", role: "analyst", created_by: "admin" });
    expect((await x.get("/auth/whoami", key.key)).json()).toMatchObject({ username: "svc-ingest", user_kind: "service", role: "analyst" });
    const tooMuch = await createKey({ name: "ingest admin", user: "svc-ingest", role: "admin" }, t.adminToken);
    expect(tooMuch.statusCode).toBe(400);
    expect(tooMuch.json().code).toBe("KEY_EXCEEDS_OWNER");
    const login = await x.login("svc-ingest", "Any-Passw0rd-at-all");
    expect(login.statusCode).toBe(401);
    expect(login.json().code).toBe("INVALID_CREDENTIALS");
    expect((await x.audit("identity.login.failed")).at(-1)!.details.reason).toBe("no_password");
    const listed = await x.get("/auth/keys?user=svc-ingest");
    expect(listed.json().items.map((i: { id: string }) => i.id)).toEqual([key.id]);
  });

  it("needs keys:manage for someone else's keys, and does not reveal which users exist", async () => {
    for (const user of ["svc-ingest", "no-such-user", "00000000-0000-4000-8000-000000000000"]) {
      const res = await createKey({ name: "not mine", user });
      expect(res.statusCode, user).toBe(403);
      expect(res.json().code, user).toBe("FORBIDDEN");
    }
    expect((await createKey({ name: "mine by name", user: "KIM" })).statusCode).toBe(201);
    expect((await x.get("/auth/keys?all=true", kim.access_token)).statusCode).toBe(403);
    expect((await x.get("/auth/keys?user=svc-ingest", kim.access_token)).statusCode).toBe(403);
    expect((await x.get("/auth/keys?user=no-such-user", kim.access_token)).statusCode).toBe(403);
    expect((await createKey({ name: "x", user: "no-such-user" }, t.adminToken)).json().code).toBe("OWNER_NOT_FOUND");
  });

  it("shrinks a key's effective permissions when its owner is demoted (role change audited)", async () => {
    await x.createUser("ana", "analyst", "Demoted-Passw0rd-9");
    const session = await x.loginOk("ana", "Demoted-Passw0rd-9");
    const key = await createdKey({ name: "analyst key" }, session.access_token);
    expect(key.effective_permissions).toContain("actions:request");
    expect((await x.get("/auth/whoami", key.key)).json().permissions).toContain("actions:request");
    const demote = await x.post("/users/ana/role", { role: "viewer" });
    expect(demote.statusCode).toBe(200);
    expect(demote.json().role).toBe("viewer");
    expect((await x.get("/auth/whoami", key.key)).json().permissions).toEqual(VIEWER_PERMISSIONS);
    expect((await x.get("/auth/whoami", session.access_token)).json()).toMatchObject({ role: "viewer", permissions: VIEWER_PERMISSIONS });
    expect((await x.get(`/auth/keys/${key.id}`)).json()).toMatchObject({ role: "analyst", effective_permissions: VIEWER_PERMISSIONS });
    const [entry] = await x.audit("identity.user.role_changed");
    expect(entry).toMatchObject({ target: { type: "user", id: (await x.userRow("ana"))!.id }, before: { role: "analyst" }, after: { role: "viewer" } });
    expect((await x.post("/users/ana/role", { role: "root" })).statusCode).toBe(400);
    expect((await x.post("/users/ana/role", { role: "admin" }, kim.access_token)).statusCode).toBe(403);
  });

  it("leaves no secret in the audit log or the logs", async () => x.scan());
});

describe.each(DB_KINDS)("identity: user administration on %s", (kind) => {
  let t: TestApp;
  const x = tools(() => t, { leaves: 2, secrets: 0 });
  beforeAll(async () => {
    t = await createTestApp(kind, { config: FAST });
  });
  afterAll(async () => t?.close());
  const PASSWORD = "Usual-Passw0rd-U";

  it("refuses a duplicate username, case-insensitively, with 409 USER_EXISTS (also when racing)", async () => {
    await x.createUser("Dup.User", "viewer", PASSWORD);
    for (const username of ["dup.user", "DUP.USER", "Dup.User"]) {
      const res = await x.post("/users", { username, role: "viewer", password: PASSWORD });
      expect(res.statusCode, username).toBe(409);
      expect(res.json().code).toBe("USER_EXISTS");
    }
    const race = await Promise.all(["race.user", "RACE.user", "Race.User"].map((username) => x.post("/users", { username, role: "viewer", kind: "service" })));
    expect(race.map((r) => r.statusCode).sort()).toEqual([201, 409, 409]);
    for (const r of race.filter((r) => r.statusCode === 409)) expect(r.json().code).toBe("USER_EXISTS");
    expect((await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE lower(username) = 'race.user'"))[0]!.n).toBe(1);
    for (const username of ["-starts-with-dash", "has space", "x".repeat(65), "semi;colon", "0190a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b"]) {
      const res = await x.post("/users", { username, role: "viewer", kind: "service" });
      expect(res.statusCode, username).toBe(400);
      expect(res.json().code).toBe("VALIDATION_FAILED");
    }
  });

  it("never lets the last enabled admin be disabled or demoted (409 SELF_LOCKOUT)", async () => {
    const disable = await x.post("/users/admin/disable");
    expect(disable.statusCode).toBe(409);
    expect(disable.json().code).toBe("SELF_LOCKOUT");
    const demote = await x.post("/users/admin/role", { role: "viewer" });
    expect(demote.statusCode).toBe(409);
    expect(demote.json().code).toBe("SELF_LOCKOUT");
    expect((await x.get("/users/admin")).json()).toMatchObject({ role: "admin", disabled: false });
    // With a second admin, either may go, but not both.
    await x.createUser("admin2", "admin", PASSWORD);
    expect((await x.post("/users/admin2/disable")).statusCode).toBe(200);
    expect((await x.post("/users/admin/disable")).json().code).toBe("SELF_LOCKOUT");
    expect((await x.post("/users/admin2/enable")).statusCode).toBe(200);
    const second = await x.loginOk("admin2", PASSWORD);
    expect((await x.post("/users/admin2/role", { role: "viewer" }, second.access_token)).statusCode).toBe(200);
    expect((await x.post("/users/admin/role", { role: "viewer" })).json().code).toBe("SELF_LOCKOUT");
    expect((await x.get("/users/admin2", second.access_token)).statusCode).toBe(403);
  });

  it("keeps exactly one enabled admin when all admins are disabled at the same time", async () => {
    await x.post("/users/admin2/role", { role: "admin" });
    await x.createUser("admin3", "admin", PASSWORD);
    const keys: Record<string, string> = { admin: t.adminToken };
    for (const user of ["admin2", "admin3"]) {
      const res = await x.post("/auth/keys", { name: `${user} key`, user, role: "admin" });
      expect(res.statusCode, res.body).toBe(201);
      keys[user] = res.json().key;
      x.keep(res.json().key);
    }
    const enabledAdmins = async () =>
      (await t.db.query<{ username: string }>("SELECT username FROM users WHERE role = 'admin' AND NOT disabled ORDER BY username")).map((r) => r.username);
    for (let round = 0; round < 6; round++) {
      expect(await enabledAdmins()).toEqual(["admin", "admin2", "admin3"]);
      const order = round % 2 ? ["admin3", "admin", "admin2"] : ["admin", "admin2", "admin3"];
      const results = await Promise.all(order.map((u) => x.post(`/users/${u}/disable`)));
      expect(results.map((r) => r.statusCode).sort(), `round ${round}`).toEqual([200, 200, 409]);
      for (const r of results) expect([200, 409]).toContain(r.statusCode);
      const left = await enabledAdmins();
      expect(left, `round ${round}`).toHaveLength(1);
      for (const u of ["admin", "admin2", "admin3"]) if (u !== left[0]) expect((await x.post(`/users/${u}/enable`, undefined, keys[left[0]!])).statusCode).toBe(200);
    }
  });

  it("disabling a user ends their sessions and stops their keys (401 USER_DISABLED); enabling restores the keys", async () => {
    const dora = (await x.createUser("dora", "viewer", PASSWORD)).user.id;
    const session = await x.loginOk("dora", PASSWORD);
    const keyRes = await x.post("/auth/keys", { name: "dora key" }, session.access_token);
    const key = keyRes.json() as { key: string; prefix: string };
    x.keep(key.key);
    expect((await x.get("/auth/whoami", key.key)).statusCode).toBe(200);
    expect((await x.get("/auth/whoami", session.access_token)).statusCode).toBe(200);
    const disable = await x.post("/users/dora/disable");
    expect(disable.statusCode).toBe(200);
    expect(disable.json().disabled).toBe(true);
    const viaKey = await x.get("/auth/whoami", key.key);
    expect(viaKey.statusCode).toBe(401);
    expect(viaKey.json().code).toBe("USER_DISABLED");
    expect(viaKey.json().detail).toContain(key.prefix);
    const viaSession = await x.get("/auth/whoami", session.access_token);
    expect(viaSession.statusCode).toBe(401);
    expect(["SESSION_REVOKED", "USER_DISABLED"]).toContain(viaSession.json().code);
    expect((await t.db.query<{ revoked_reason: string }>("SELECT revoked_reason FROM sessions WHERE id = $1", [session.session_id]))[0]!.revoked_reason).toBe("user_disabled");
    expect((await x.refresh(session.refresh_token)).statusCode).toBe(401);
    expect((await x.login("dora", PASSWORD)).json().code).toBe("INVALID_CREDENTIALS");
    const forDisabled = await x.post("/auth/keys", { name: "for dora", user: "dora" });
    expect(forDisabled.statusCode).toBe(409);
    expect(forDisabled.json().code).toBe("OWNER_DISABLED");
    const [entry] = (await x.audit("identity.user.disabled")).filter((e) => e.after?.disabled && e.target?.id === dora);
    expect(entry).toMatchObject({ target: { type: "user", id: dora }, before: { disabled: false }, after: { disabled: true } });
    expect((await x.post("/users/dora/enable")).statusCode).toBe(200);
    expect((await x.get("/auth/whoami", key.key)).statusCode).toBe(200);
    expect((await x.get("/auth/whoami", session.access_token)).json().code).toBe("SESSION_REVOKED");
  });

  it("needs users:write to administer users, and never shows password hashes", async () => {
    await x.createUser("vic", "viewer", PASSWORD);
    const vic = await x.loginOk("vic", PASSWORD);
    for (const [url, body] of [
      ["/users", { username: "mallory", role: "admin", password: PASSWORD }],
      ["/users/vic/role", { role: "admin" }],
      ["/users/dora/disable", undefined],
      ["/users/dora/reset-password", undefined],
    ] as const) {
      const res = await x.post(url, body, vic.access_token);
      expect(res.statusCode, url).toBe(403);
      expect(res.json().code).toBe("FORBIDDEN");
    }
    expect((await x.get("/users", vic.access_token)).statusCode).toBe(403);
    const list = await x.get("/users");
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain("argon2");
    expect((await x.get("/users/nobody")).json().code).toBe("USER_NOT_FOUND");
  });

  it("leaves no secret in the audit log or the logs", async () => x.scan());
});

describe.each(DB_KINDS)("identity: oversized and malformed credentials on %s", (kind) => {
  let t: TestApp;
  const x = tools(() => t, { leaves: 2, secrets: 0 });
  beforeAll(async () => {
    t = await createTestApp(kind, { config: FAST });
    await x.createUser("mona", "viewer", "Malformed-Passw0rd-M");
  });
  afterAll(async () => t?.close());
  const whoami = (authorization: string) => t.app.inject({ method: "GET", url: "/auth/whoami", headers: { authorization } });

  it("refuses an oversized or malformed Authorization header with 401 UNAUTHENTICATED", async () => {
    for (const header of ["Bearer " + "a".repeat(5000), "Bearer eyJ" + "a".repeat(5000) + ".b.c", "Bearer", "Bearer ", "Bearer a b", "Basic bW9uYTpwdw==", "pc_abc", "Token pc_abc"]) {
      const res = await whoami(header);
      expect(res.statusCode, header.slice(0, 40)).toBe(401);
      expect(res.json().code, header.slice(0, 40)).toBe("UNAUTHENTICATED");
    }
  });

  it("answers garbage that looks like a JWT with 401 ACCESS_TOKEN_INVALID, never a 500", async () => {
    const garbage = [
      "eyJ.x.y",
      "eyJ..",
      "eyJ!!.@@.##",
      "eyJhbGciOiJFZERTQSJ9.x.y",
      `eyJ${"A".repeat(300)}.${"B".repeat(300)}.${"C".repeat(300)}`,
      `${b64({ alg: "EdDSA", typ: "at+jwt" })}.${b64([1, 2])}.AAAA`,
      `${b64({ alg: "EdDSA", typ: "at+jwt", crit: ["exp"] })}.${b64({ sub: "x" })}.AAAA`,
      `${b64({ alg: "EdDSA", b64: false, crit: ["b64"] })}.${b64({ sub: "x" })}.AAAA`,
      `${b64({ alg: "EdDSA", jwk: { kty: "OKP", crv: "Ed25519", x: "AAAA" } })}.${b64({ sub: "x" })}.AAAA`,
      `${b64({ alg: "RS256", typ: "at+jwt" })}.${b64({ sub: "x" })}.AAAA`,
      `${b64({ alg: "EdDSA", typ: "at+jwt", zip: "DEF" })}.${b64({ sub: "x" })}.AAAA`,
      `${b64({ alg: "EdDSA", typ: "at+jwt" })}.${b64({ sub: "x" }).slice(0, -1)}\u00e9.AAAA`,
    ];
    for (const token of garbage) {
      const res = await whoami(`Bearer ${token}`);
      expect(res.statusCode, token.slice(0, 60)).toBe(401);
      expect(res.json().code, token.slice(0, 60)).toMatch(/^(ACCESS_TOKEN_INVALID|UNAUTHENTICATED)$/);
    }
    const plain = await whoami("Bearer pc_" + "z".repeat(43));
    expect(plain.json().code).toBe("API_KEY_INVALID");
  });

  it("refuses a 10,000-character password or username with 400 VALIDATION_FAILED before any hashing", async () => {
    const before = (await x.audit()).length;
    const huge = "P".repeat(10_000);
    const res = await x.call("POST", "/auth/login", { body: { username: "mona", password: huge }, token: null });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "password" }] });
    expect(res.body).not.toContain(huge.slice(0, 300));
    const user = await x.call("POST", "/auth/login", { body: { username: "u".repeat(10_000), password: "whatever-Passw0rd" }, token: null });
    expect(user.statusCode).toBe(400);
    expect((await x.audit()).length, "no login attempt was recorded").toBe(before);
    expect((await x.userRow("mona"))!.failed_logins).toBe(0);
    const change = await x.post("/users", { username: "longpw", role: "viewer", password: huge });
    expect(change.statusCode).toBe(400);
    expect(change.json().code).toBe("VALIDATION_FAILED");
  });

  it("refuses login bodies with extra, missing or mistyped fields with 400", async () => {
    const cases: [unknown, string][] = [
      [{ username: "mona", password: "Malformed-Passw0rd-M", role: "admin" }, "VALIDATION_FAILED"],
      [{ username: "mona" }, "VALIDATION_FAILED"],
      [{ username: "mona", password: 12345678901234 }, "VALIDATION_FAILED"],
      [{ username: ["mona"], password: "Malformed-Passw0rd-M" }, "VALIDATION_FAILED"],
      [{ username: "", password: "" }, "VALIDATION_FAILED"],
      [{ username: "mona", password: "Malformed-Passw0rd-M\u0000" }, "VALIDATION_FAILED"],
      [["mona", "Malformed-Passw0rd-M"], "VALIDATION_FAILED"],
    ];
    for (const [body, code] of cases) {
      const res = await x.call("POST", "/auth/login", { body, token: null });
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().code, JSON.stringify(body)).toBe(code);
    }
    const extra = await x.call("POST", "/auth/login", { body: { username: "mona", password: "Malformed-Passw0rd-M", role: "admin" }, token: null });
    expect(extra.json().errors).toEqual([{ path: "role", message: "unknown field" }]);
    const notJson = await t.app.inject({ method: "POST", url: "/auth/login", headers: { "content-type": "application/json" }, payload: "{username: mona" });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().code).toBe("MALFORMED_BODY");
    // The account itself is fine.
    await x.loginOk("mona", "Malformed-Passw0rd-M");
  });

  it("leaves no secret in the audit log or the logs", async () => x.scan());
});
