// Exactly once under real concurrency: two app nodes on one PostgreSQL, requests fired in parallel
// (each on its own pool connection). Ten approvals or ten executions of one request make exactly
// one transition; the other nine answer 409 ACTION_STATE_CONFLICT, and the domain changes once.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app/build.ts";
import { createKeyForRole, createTestApp, describePostgres, testConfig, type TestApp } from "./helpers/harness.ts";
import { installRules } from "./helpers/action-rules.ts";

type Json = Record<string, any>;

describePostgres("action workflow concurrency on postgres", () => {
  let t: TestApp;
  let node2: FastifyInstance;
  let analyst: string, executor: string;
  const approvers: string[] = [];
  beforeAll(async () => {
    t = await createTestApp("postgres");
    analyst = (await createKeyForRole(t.db, "analyst")).token;
    executor = (await createKeyForRole(t.db, "executor")).token;
    for (let i = 0; i < 10; i++) approvers.push((await createKeyForRole(t.db, "approver")).token);
    await installRules(t, analyst, approvers[0]!);
    // The second node starts after the rules are active (it loads them at start).
    node2 = await buildApp({ config: testConfig(), db: t.db, logger: false });
  });
  afterAll(async () => {
    await node2?.close();
    await t?.close();
  });

  const nodes = () => [t.app, node2];
  const post = (i: number, url: string, token: string, payload?: object) =>
    nodes()[i % 2]!.inject({ method: "POST", url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
  const create = async (body: Json) => {
    const res = await post(0, "/security/actions/", analyst, body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Json;
  };
  const tally = (responses: { statusCode: number; json(): unknown }[]) => {
    const out: Record<string, number> = {};
    for (const r of responses) {
      const key = r.statusCode >= 400 ? `${r.statusCode} ${(r.json() as Json).code}` : String(r.statusCode);
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  };
  const detail = async (id: string) => (await t.app.inject({ method: "GET", url: `/security/actions/${id}`, headers: t.auth() })).json() as Json;
  const auditActions = async (id: string) =>
    ((await t.app.inject({ method: "GET", url: `/audit/entries?target_type=action_request&target_id=${id}&limit=1000`, headers: t.auth() })).json().items as Json[]).map((e) => e.action);

  it("ten approvers at once on a one-approval request: one approval, nine 409s; ten executions: one execution, nine 409s", async () => {
    const req = await create({ action_type: "block_entity", payload: { entity_type: "ip", value: "5.188.86.10" } });
    const approvals = await Promise.all(approvers.map((token, i) => post(i, `/security/actions/${req.id}/approve`, token, { note: `approver ${i}` })));
    expect(tally(approvals)).toEqual({ "200": 1, "409 ACTION_STATE_CONFLICT": 9 });
    const afterApproval = await detail(req.id);
    expect(afterApproval).toMatchObject({ status: "approved", approvals_count: 1 });
    expect(afterApproval.approvals).toHaveLength(1);

    const executions = await Promise.all(Array.from({ length: 10 }, (_, i) => post(i, `/security/actions/${req.id}/execute`, executor)));
    expect(tally(executions)).toEqual({ "200": 1, "409 ACTION_STATE_CONFLICT": 9 });
    const blocks = (await t.app.inject({ method: "GET", url: "/security/policy/blocks?q=5.188.86.10&limit=100", headers: t.auth() })).json().items as Json[];
    expect(blocks).toHaveLength(1);
    const done = await detail(req.id);
    expect(done).toMatchObject({ status: "executed", result: { block: { id: blocks[0]!.id } } });
    expect(done.history.map((h: Json) => h.event)).toEqual(["created", "approved", "executed"]);
    expect(await auditActions(req.id)).toEqual(["actions.request.created", "actions.request.approved", "actions.request.executed"]);
    // Both nodes enforce it (node 2 through NOTIFY).
    for (const node of nodes()) {
      const check = async () => (await node.inject({ method: "GET", url: "/security/policy/check?ip=5.188.86.10", headers: t.auth() })).json().blocked as boolean;
      await expect.poll(check, { timeout: 5_000 }).toBe(true);
    }
  });

  it("ten approvers at once on a two-approval request: exactly two approvals", async () => {
    const req = await create({ action_type: "block_entity", payload: { entity_type: "cidr", value: "5.188.0.0/16" } });
    expect(req.approvals_required).toBe(2);
    const approvals = await Promise.all(approvers.map((token, i) => post(i, `/security/actions/${req.id}/approve`, token, { note: `approver ${i}` })));
    expect(tally(approvals)).toEqual({ "200": 2, "409 ACTION_STATE_CONFLICT": 8 });
    const d = await detail(req.id);
    expect(d).toMatchObject({ status: "approved", approvals_count: 2 });
    expect(new Set(d.approvals.map((a: Json) => a.approver.id)).size).toBe(2);
  });

  it("ten executions at once of a request whose execution fails: one recorded failure, nine 409s, domain unchanged", async () => {
    const req = await create({ action_type: "block_entity", payload: { entity_type: "ip", value: "5.188.86.11" } });
    expect((await post(1, `/security/actions/${req.id}/approve`, approvers[1]!, { note: "ok" })).statusCode).toBe(200);
    const direct = await t.app.inject({ method: "POST", url: "/security/policy/blocks", headers: t.auth(), payload: { entity_type: "ip", value: "5.188.86.11", reason: "manual" } });
    expect(direct.statusCode).toBe(201);
    const executions = await Promise.all(Array.from({ length: 10 }, (_, i) => post(i, `/security/actions/${req.id}/execute`, executor)));
    expect(tally(executions)).toEqual({ "422 ACTION_EXECUTION_FAILED": 1, "409 ACTION_STATE_CONFLICT": 9 });
    const d = await detail(req.id);
    expect(d.status).toBe("failed");
    expect(d.failure_reason).toContain("BLOCK_EXISTS");
    const blocks = (await t.app.inject({ method: "GET", url: "/security/policy/blocks?q=5.188.86.11&limit=100", headers: t.auth() })).json().items as Json[];
    expect(blocks.map((b) => b.id)).toEqual([direct.json().id]);
    expect(await auditActions(req.id)).toEqual(["actions.request.created", "actions.request.approved", "actions.request.failed"]);
  });
});
