// Two nodes on one PostgreSQL: a revocation, a disable or a session logout on one node cuts access
// on the other at once (NOTIFY clears its cache), not after the 5 s cache lifetime.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app/build.ts";
import { createTestApp, describePostgres, testConfig, type TestApp } from "./helpers/harness.ts";

// Well under the 5 s cache lifetime: passing proves the change was pushed, not waited out.
const within = async (ms: number, fn: () => Promise<boolean>) => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
};

describePostgres("identity changes across nodes on postgres", () => {
  let node1: TestApp;
  let node2: FastifyInstance;
  beforeAll(async () => {
    node1 = await createTestApp("postgres", { config: { "auth.argon2MemoryKiB": 8192 } });
    node2 = await buildApp({ config: testConfig({ "auth.argon2MemoryKiB": 8192 }), db: node1.db, logger: false });
  });
  afterAll(async () => {
    await node2?.close();
    await node1?.close();
  });

  const whoamiOn = (app: FastifyInstance, token: string) => app.inject({ method: "GET", url: "/auth/whoami", headers: { authorization: `Bearer ${token}` } });

  it("a key revoked on node 1 stops working on node 2 at once", async () => {
    const created = await node1.app.inject({ method: "POST", url: "/auth/keys", headers: node1.auth(), payload: { name: "cluster", role: "viewer" } });
    const { id, key } = created.json();
    // node 2 has it cached now.
    expect((await whoamiOn(node2, key)).statusCode).toBe(200);
    expect((await whoamiOn(node2, key)).statusCode).toBe(200);
    expect((await node1.app.inject({ method: "POST", url: `/auth/keys/${id}/revoke`, headers: node1.auth() })).statusCode).toBe(200);
    expect(await within(2_000, async () => (await whoamiOn(node2, key)).statusCode === 401)).toBe(true);
    expect((await whoamiOn(node2, key)).json().code).toBe("API_KEY_REVOKED");
  });

  it("a session logged out on node 1 is refused on node 2 at once", async () => {
    const password = "cluster-wide-passphrase-4411";
    expect((await node1.app.inject({ method: "POST", url: "/users", headers: node1.auth(), payload: { username: "roamer", role: "analyst", password } })).statusCode).toBe(201);
    const login = await node2.inject({ method: "POST", url: "/auth/login", payload: { username: "roamer", password } });
    const { access_token } = login.json();
    expect((await whoamiOn(node2, access_token)).statusCode).toBe(200);
    expect((await node1.app.inject({ method: "POST", url: "/auth/logout", headers: { authorization: `Bearer ${access_token}` } })).json()).toEqual({ revoked: 1 });
    expect(await within(2_000, async () => (await whoamiOn(node2, access_token)).statusCode === 401)).toBe(true);
    expect((await whoamiOn(node2, access_token)).json().code).toBe("SESSION_REVOKED");
  });

  it("a role change on node 1 applies on node 2 at once", async () => {
    const created = await node1.app.inject({ method: "POST", url: "/users", headers: node1.auth(), payload: { username: "promoted", role: "viewer", kind: "service" } });
    expect(created.statusCode).toBe(201);
    const key = (await node1.app.inject({ method: "POST", url: "/auth/keys", headers: node1.auth(), payload: { name: "svc", user: "promoted", role: "viewer" } })).json().key;
    expect((await whoamiOn(node2, key)).json().role).toBe("viewer");
    await node1.app.inject({ method: "POST", url: "/users/promoted/disable", headers: node1.auth() });
    expect(await within(2_000, async () => (await whoamiOn(node2, key)).statusCode === 401)).toBe(true);
    expect((await whoamiOn(node2, key)).json().code).toBe("USER_DISABLED");
  });
});
