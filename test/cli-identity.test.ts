// End to end: the identity CLI (login, whoami, password, user, key, session, admin unlock, logout)
// against a real server process, on PGlite and, when PORTCULLIS_TEST_DATABASE_URL is set, PostgreSQL.
// The steps share one server and run in order: each builds on the state the previous one left.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { createPrivateKey } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DB_KINDS } from "./helpers/harness.ts";
import { createScratchDatabase, type ScratchDatabase } from "./helpers/scratch-db.ts";
import { bootstrapKey, runCli, startServer, stopServer, type CliResult, type ServerProc } from "./helpers/cli.ts";
import { findLeaks } from "./helpers/secret-scan.ts";

const ALICE_PASSWORD = "violet-kestrel-harbour-42";
const BOB_NEW_PASSWORD = "amber-otter-lantern-17";
const BAD_PASSWORD = "not-alices-password-00";
// Each CLI run is a fresh Node process (~2 s of CPU); a step runs several. Generous, so a busy
// machine is not mistaken for a hang.
const STEP_TIMEOUT = 120_000;

type Stored = { url: string; username: string; access_token: string; access_expires_at: string; refresh_token: string; session_id: string };

/** A failed command prints exactly one line, on stderr. */
const oneLineError = (r: CliResult) => {
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  return lines[0]!;
};

describe.each(DB_KINDS)("the identity CLI against a server on %s", (kind) => {
  const tmp = mkdtempSync(join(tmpdir(), "portcullis-cli-identity-"));
  const dataDir = join(tmp, "data");
  const aliceDir = join(tmp, "alice-config");
  const bobDir = join(tmp, "bob-config");
  const credFile = join(aliceDir, "credentials.json");
  let server: ServerProc;
  let scratch: ScratchDatabase | undefined;
  let admin: string;
  const secrets: string[] = [ALICE_PASSWORD, BOB_NEW_PASSWORD, BAD_PASSWORD];
  let bobTemporary = "";
  let aliceId = "";

  const asAdmin = (args: string[], input?: string) => runCli(args, { PORTCULLIS_URL: server.url, PORTCULLIS_TOKEN: admin }, input);
  const asAlice = (args: string[], input?: string) => runCli(args, { PORTCULLIS_URL: server.url, PORTCULLIS_CONFIG_DIR: aliceDir }, input);
  const asBob = (args: string[], input?: string) => runCli(args, { PORTCULLIS_URL: server.url, PORTCULLIS_CONFIG_DIR: bobDir }, input);
  const ok = (r: CliResult) => {
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const stored = (): Stored => {
    const file = JSON.parse(readFileSync(credFile, "utf8")) as { servers: Record<string, Stored> };
    return file.servers[server.url]!;
  };
  const rewriteStored = (patch: Partial<Stored>) => {
    const file = JSON.parse(readFileSync(credFile, "utf8")) as { servers: Record<string, Stored> };
    Object.assign(file.servers[server.url]!, patch);
    writeFileSync(credFile, JSON.stringify(file));
  };

  beforeAll(async () => {
    const env: Record<string, string> = {
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_LOG__LEVEL: "info",
      // A dozen logins from one address in a minute is this test, not an attack.
      PORTCULLIS_RATE_LIMIT__LOGIN_PER_MINUTE: "1000",
    };
    if (kind === "postgres") {
      scratch = await createScratchDatabase(process.env.PORTCULLIS_TEST_DATABASE_URL!, "pc_cli_identity");
      env.PORTCULLIS_DATABASE_URL = scratch.url;
    }
    server = await startServer(env);
    const key = bootstrapKey(server.output());
    expect(key, server.output()).toBeDefined();
    admin = key!;
  }, 120_000);

  afterAll(async () => {
    if (server) expect(await stopServer(server)).toBe(0);
    await scratch?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("adds users: one with a password from stdin, one with a temporary password shown once; refuses a password argument", async () => {
    const [alice, bob, refused] = await Promise.all([
      asAdmin(["user", "add", "alice", "--role", "analyst", "--password-stdin", "--json"], `${ALICE_PASSWORD}\n`),
      asAdmin(["user", "add", "bob", "--role", "viewer"]),
      asAlice(["login", "--username", "alice", "--password", ALICE_PASSWORD]),
    ]);
    // Refused before any request or file access: shell history and ps would show it.
    expect(refused.code).toBe(2);
    expect(oneLineError(refused)).toMatch(/refusing a password given as an argument/);
    expect(existsSync(credFile)).toBe(false);
    const created = JSON.parse(ok(alice));
    expect(created.user).toMatchObject({ username: "alice", role: "analyst", kind: "human", must_change_password: false });
    expect(created.temporary_password).toBeUndefined();
    const temporary = /^temporary password: (\S+)$/m.exec(ok(bob))?.[1];
    expect(temporary, bob.stdout).toBeDefined();
    expect(bob.stderr).toMatch(/shown only now/);
    secrets.push(temporary!);
    bobTemporary = temporary!;
  }, STEP_TIMEOUT);

  it("logs in with the password from stdin: 0600 credentials in a 0700 directory, without the password", async () => {
    const login = ok(await asAlice(["login", "--username", "alice", "--password-stdin"], `${ALICE_PASSWORD}\n`));
    expect(login).toContain("as alice (role analyst)");
    expect(login).toContain(credFile);
    expect(statSync(credFile).mode & 0o777).toBe(0o600);
    expect(statSync(aliceDir).mode & 0o777).toBe(0o700);
    const text = readFileSync(credFile, "utf8");
    expect(text).not.toContain(ALICE_PASSWORD);
    const s = stored();
    expect(s).toMatchObject({ url: server.url, username: "alice" });
    expect(s.refresh_token).toMatch(/^pcr_/);
    expect(Date.parse(s.access_expires_at)).toBeGreaterThan(Date.now());
    secrets.push(s.access_token, s.refresh_token);
  }, STEP_TIMEOUT);

  it("whoami works from the stored session, with no PORTCULLIS_TOKEN", async () => {
    const me = JSON.parse(ok(await asAlice(["whoami", "--json"])));
    expect(me).toMatchObject({ username: "alice", role: "analyst", via: "session", session_id: stored().session_id, credentials: credFile });
    expect(me.permissions).toContain("keys:own");
    aliceId = me.id;
  }, STEP_TIMEOUT);

  it("refreshes an expired access token transparently and saves the rotated pair; fixes a readable file", async () => {
    // Expired by our own clock: refreshed before the request.
    const before = stored();
    rewriteStored({ access_expires_at: new Date(Date.now() - 60_000).toISOString() });
    chmodSync(credFile, 0o644);
    const r = await asAlice(["whoami", "--json"]);
    expect(JSON.parse(ok(r)).username).toBe("alice");
    expect(r.stderr).toMatch(/was readable by other users \(mode 0644\); it is now 0600/);
    expect(statSync(credFile).mode & 0o777).toBe(0o600);
    const after = stored();
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.session_id).toBe(before.session_id);
    expect(Date.parse(after.access_expires_at)).toBeGreaterThan(Date.now());
    secrets.push(after.access_token, after.refresh_token);

    // Expired by the server's clock although ours says it is good: the 401 ACCESS_TOKEN_EXPIRED path.
    // The token is minted with the server's own signing key, with times in the past.
    const key = createPrivateKey(readFileSync(join(dataDir, "jwt-signing-key.pem"), "utf8"));
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ sid: after.session_id, role: "analyst" })
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt" })
      .setIssuer("urn:portcullis")
      .setAudience("portcullis-api")
      .setSubject(aliceId)
      .setJti("00000000-0000-7000-8000-000000000000")
      .setIssuedAt(now - 1_000)
      .setExpirationTime(now - 100)
      .sign(key);
    const probe = await fetch(`${server.url}/auth/whoami`, { headers: { authorization: `Bearer ${expired}` } });
    expect(((await probe.json()) as { code: string }).code).toBe("ACCESS_TOKEN_EXPIRED");
    rewriteStored({ access_token: expired, access_expires_at: new Date(Date.now() + 600_000).toISOString() });
    expect(JSON.parse(ok(await asAlice(["whoami", "--json"]))).username).toBe("alice");
    const third = stored();
    expect(third.refresh_token).not.toBe(after.refresh_token);
    expect(third.access_token).not.toBe(expired);
    secrets.push(third.access_token, third.refresh_token);
  }, STEP_TIMEOUT);

  it("creates a key and prints it once; lists only its prefix; a revoked key fails with a one-line error naming the prefix", async () => {
    const created = await asAlice(["key", "create", "--name", "ci", "--expires-in-days", "7"]);
    const apiKey = /^(pc_[A-Za-z0-9_-]{43})$/m.exec(ok(created))?.[1];
    expect(apiKey, created.stdout).toBeDefined();
    secrets.push(apiKey!);
    expect(created.stderr).toMatch(/shown only now/);
    const prefix = apiKey!.slice(0, 11);

    const [table, listed, viaKey] = await Promise.all([
      asAlice(["key", "list"]),
      asAlice(["key", "list", "--json"]),
      runCli(["whoami", "--json"], { PORTCULLIS_URL: server.url, PORTCULLIS_TOKEN: apiKey! }),
    ]);
    expect(ok(table)).toContain(prefix);
    expect(table.stdout).not.toContain(apiKey);
    const items = JSON.parse(ok(listed)).items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ prefix, name: "ci", owner: "alice", status: "active" });
    expect(items[0].key).toBeUndefined();
    expect(listed.stdout).not.toContain(apiKey);
    expect(JSON.parse(ok(viaKey))).toMatchObject({ username: "alice", via: "api_key", key_prefix: prefix, credentials: "PORTCULLIS_TOKEN" });

    expect(ok(await asAlice(["key", "revoke", prefix]))).toContain(`revoked API key ${prefix}`);
    const refused = await runCli(["whoami"], { PORTCULLIS_URL: server.url, PORTCULLIS_TOKEN: apiKey! });
    expect(refused.code).toBe(1);
    const line = oneLineError(refused);
    expect(line).toMatch(/API_KEY_REVOKED/);
    expect(line).toContain(prefix);
    expect(line).not.toContain(apiKey);
  }, STEP_TIMEOUT);

  it("set-role changes what the logged-in user is", async () => {
    expect(JSON.parse(ok(await asAdmin(["user", "set-role", "alice", "viewer", "--json"]))).role).toBe("viewer");
    const [me, sessions] = await Promise.all([asAlice(["whoami", "--json"]), asAdmin(["user", "sessions", "alice", "--json"])]);
    expect(JSON.parse(ok(me)).role).toBe("viewer");
    expect(JSON.parse(ok(sessions)).items.map((s: { id: string }) => s.id)).toContain(stored().session_id);
  }, STEP_TIMEOUT);

  it("locks a user out after 5 bad logins; admin unlock lets the right password in again", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: BAD_PASSWORD }) });
      expect(res.status).toBe(401);
    }
    const [locked, shown] = await Promise.all([
      asAlice(["login", "--username", "alice", "--password-stdin"], `${ALICE_PASSWORD}\n`),
      asAdmin(["user", "show", "alice", "--json"]),
    ]);
    expect(locked.code).toBe(1);
    expect(oneLineError(locked)).toMatch(/INVALID_CREDENTIALS/);
    expect(JSON.parse(ok(shown)).locked_until).not.toBeNull();

    const unlocked = JSON.parse(ok(await asAdmin(["admin", "unlock", "alice", "--json"])));
    expect(unlocked).toMatchObject({ locked_until: null, failed_logins: 0 });
    const before = stored();
    ok(await asAlice(["login", "--username", "alice", "--password-stdin"], `${ALICE_PASSWORD}\n`));
    const after = stored();
    expect(after.session_id).not.toBe(before.session_id);
    secrets.push(after.access_token, after.refresh_token);
    // The session the new login replaced was ended, not left open.
    const replaced = await fetch(`${server.url}/auth/refresh`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refresh_token: before.refresh_token }) });
    expect(replaced.status).toBe(401);
  }, STEP_TIMEOUT);

  it("a disabled user's stored session stops working and login fails until enabled", async () => {
    expect(JSON.parse(ok(await asAdmin(["user", "disable", "alice", "--json"]))).disabled).toBe(true);
    const [who, login] = await Promise.all([asAlice(["whoami"]), asAlice(["login", "--username", "alice", "--password-stdin"], `${ALICE_PASSWORD}\n`)]);
    expect(who.code).toBe(1);
    expect(oneLineError(who)).toMatch(/SESSION_REVOKED.*portcullis login/);
    expect(login.code).toBe(1);
    expect(oneLineError(login)).toMatch(/INVALID_CREDENTIALS/);
    expect(JSON.parse(ok(await asAdmin(["user", "enable", "alice", "--json"]))).disabled).toBe(false);
  }, STEP_TIMEOUT);

  it("a temporary password must be changed first: `password` from stdin", async () => {
    const login = ok(await asBob(["login", "--username", "bob", "--password-stdin"], `${bobTemporary}\n`));
    expect(login).toMatch(/must be changed.*portcullis password/);
    const blocked = await asBob(["key", "list"]);
    expect(blocked.code).toBe(1);
    expect(oneLineError(blocked)).toMatch(/PASSWORD_CHANGE_REQUIRED.*portcullis password/);
    const changed = JSON.parse(ok(await asBob(["password", "--new-password-stdin", "--json"], `${bobTemporary}\n${BOB_NEW_PASSWORD}\n`)));
    expect(changed.changed).toBe(true);
    const [keys, users] = await Promise.all([asBob(["key", "list", "--json"]), asAdmin(["user", "list", "--json"])]);
    expect(JSON.parse(ok(keys)).items).toEqual([]);
    const bob = JSON.parse(ok(users)).items.find((u: { username: string }) => u.username === "bob");
    expect(bob.must_change_password).toBe(false);
  }, STEP_TIMEOUT);

  it("logout ends the session on the server and deletes the credentials", async () => {
    ok(await asAlice(["login", "--username", "alice", "--password-stdin"], `${ALICE_PASSWORD}\n`));
    const s = stored();
    secrets.push(s.access_token, s.refresh_token);
    const sessions = JSON.parse(ok(await asAlice(["session", "list", "--json"]))).items;
    expect(sessions.find((x: { current: boolean }) => x.current).id).toBe(s.session_id);
    const out = JSON.parse(ok(await asAlice(["logout", "--json"])));
    expect(out).toMatchObject({ logged_out: true, username: "alice", session_revoked: true });
    expect(existsSync(credFile)).toBe(false);
    const refresh = await fetch(`${server.url}/auth/refresh`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refresh_token: s.refresh_token }) });
    expect(refresh.status).toBe(401);
    const who = await asAlice(["whoami"]);
    expect(who.code).toBe(2);
    expect(oneLineError(who)).toMatch(/not logged in .*portcullis login/);
  }, STEP_TIMEOUT);

  it("the server's log holds none of the passwords, keys or tokens", () => {
    // The bootstrap banner prints the admin key once, on purpose.
    const lines = server.output().split("\n").filter((l) => !l.includes(admin));
    expect(lines.length).toBeGreaterThan(1);
    expect(findLeaks(lines, secrets)).toEqual([]);
  }, STEP_TIMEOUT);
});
