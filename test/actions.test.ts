// The security action workflow through the HTTP API on a real database, against enforced policy
// rules: the analyst-to-enforcement flow with signed approvals verified offline, every forbidden
// transition with its code, DENY and DRY_RUN_ONLY, expiry (at transition time and by the sweep),
// recorded failures that leave the domain unchanged, auto-execution, validation and the seed's
// status endpoint.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { installRules } from "./helpers/action-rules.ts";
import { manualClock } from "../src/lib/time.ts";
import { verifyAction, type VerifiableAction } from "../src/domains/actions/signature.ts";

type Json = Record<string, any>;
type Key = { token: string; userId: string; prefix: string };

describe.each(DB_KINDS)("action workflow on %s", (kind) => {
  let t: TestApp;
  const clock = manualClock("2026-11-20T09:00:00.000Z");
  let analyst: Key, analyst2: Key, approver: Key, approver2: Key, executor: Key, viewer: Key;

  beforeAll(async () => {
    t = await createTestApp(kind, {
      clock,
      config: {
        "actions.executeOnApprovalTypes": ["block_entity"],
        "actions.autoExecuteTypes": ["unblock_entity"],
        "actions.ttlOverrides": ["disable_user=3600"],
      },
    });
    analyst = await createKeyForRole(t.db, "analyst");
    analyst2 = await createKeyForRole(t.db, "analyst");
    approver = await createKeyForRole(t.db, "approver");
    approver2 = await createKeyForRole(t.db, "approver");
    executor = await createKeyForRole(t.db, "executor");
    viewer = await createKeyForRole(t.db, "viewer");
    await installRules(t, analyst.token, approver.token);
  });
  afterAll(async () => t?.close());

  const call = (method: "GET" | "POST", url: string, token: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const request = async (token: string, body: Json, status = 201) => {
    const res = await call("POST", "/security/actions/", token, body);
    expect(res.statusCode, res.body).toBe(status);
    return res.json() as Json;
  };
  const verb = (id: string, name: string, token: string, note?: string) => call("POST", `/security/actions/${id}/${name}`, token, note === undefined ? undefined : { note });
  const show = async (id: string, token = viewer.token) => {
    const res = await call("GET", `/security/actions/${id}`, token);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  };
  const problem = (res: { statusCode: number; json(): unknown }, status: number, code: string) => {
    expect(res.statusCode, JSON.stringify(res.json())).toBe(status);
    expect((res.json() as Json).code).toBe(code);
    return res.json() as Json;
  };
  const auditActions = async (id: string) =>
    ((await call("GET", `/audit/entries?target_type=action_request&target_id=${id}&limit=1000`, viewer.token)).json().items as Json[]).map((e) => e.action);
  const checkIp = async (ip: string) => (await call("GET", `/security/policy/check?ip=${ip}`, viewer.token)).json() as Json;

  it("an analyst requests a block, sees the explanation and the dry-run; an approver approves; the block is enforced at once; an auditor verifies every signature", async () => {
    // An existing overlapping range shows up in the dry-run.
    const existing = await call("POST", "/security/policy/blocks", t.adminToken, { entity_type: "cidr", value: "45.95.168.0/28", reason: "older range" });
    expect(existing.statusCode).toBe(201);
    const created = await request(analyst.token, { action_type: "block_entity", payload: { entity_type: "ip", value: "45.95.168.200" }, reason: "SSH brute force from this address" });
    expect(created).toMatchObject({ status: "pending", action_type: "block_entity", risk: "medium", approvals_required: 1, approvals_count: 0, reason: "SSH brute force from this address" });
    expect(created.requested_by).toMatch(/^analyst-/);
    expect(created.requested_by_id).toBe(analyst.userId);
    // The policy's explanation, the rule that decided and the engine input.
    expect(created.decision.outcome).toBe("REQUIRE_APPROVAL");
    expect(created.decision.deciding_rule).toEqual({ name: "test-actions-need-one-approver", version: 1 });
    expect(created.decision.explanation).toContain("REQUIRE_APPROVAL (1 approval) by rule test-actions-need-one-approver v1");
    expect(created.decision.input).toMatchObject({
      action: { type: "block_entity", payload: { value: "45.95.168.200" }, reason: "SSH brute force from this address" },
      entity: { type: "ip", ip: "45.95.168.200", family: 4 },
      principal: { id: analyst.userId, kind: "user", role: "analyst" },
      policy: { mode: "normal" },
    });
    expect(created.decision.not_matched.map((m: Json) => m.name)).toContain("test-never-block-private-space");
    // The dry-run: what would be created, nothing overlapping this single address, nothing protected.
    expect(created.dry_run.report).toMatchObject({ would_create: { entity_type: "ip", value: "45.95.168.200", expires_at: null }, already_blocked_by: null, overlapping_count: 0, protected_networks: [], would_fail: null });
    // What the sensors saw of the address (nothing yet in this suite).
    expect(created.dry_run.report.recent_events).toEqual({ available: true, source_ip: "45.95.168.200", events_1h: 0, exploitation_1h: 0, hits_24h: 0, sensors: [] });
    expect((await checkIp("45.95.168.200")).blocked).toBe(false);
    // A dry-run of a range that covers the older block reports the overlap.
    const range = await request(analyst.token, { action_type: "block_entity", payload: { entity_type: "cidr", value: "45.95.168.0/24" } });
    expect(range.dry_run.report.overlapping_blocks.map((b: Json) => b.value)).toEqual(["45.95.168.0/28"]);

    // Another analyst cannot approve (no permission); the approver can, and the block is enforced at once.
    problem(await verb(created.id, "approve", analyst2.token, "looks right"), 403, "FORBIDDEN");
    const approved = await verb(created.id, "approve", approver.token, "confirmed in the SSH logs");
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({ status: "executed", approvals_count: 1, executed_by: "system:actions" });
    expect(approved.json().approved_by).toMatch(/^approver-/);
    const blockId = approved.json().result.block.id;
    expect(await checkIp("45.95.168.200")).toMatchObject({ blocked: true, matches: [{ id: blockId, type: "ip", value: "45.95.168.200" }] });
    expect((await call("GET", `/security/policy/blocks/${blockId}`, viewer.token)).json().reason).toBe(`action ${created.id}: SSH brute force from this address`);

    // The full record: decision, dry-run, the signed approval, result and history.
    const detail = await show(created.id);
    expect(detail.approvals).toHaveLength(1);
    expect(detail.approvals[0]).toMatchObject({ verdict: "approve", note: "confirmed in the SSH logs", decision: "REQUIRE_APPROVAL", payload_hash: created.payload_hash });
    expect(detail.history.map((h: Json) => `${h.event}:${h.from}->${h.to}`)).toEqual(["created:null->pending", "approved:pending->approved", "executed:approved->executed"]);
    expect(await auditActions(created.id)).toEqual(["actions.request.created", "actions.request.approved", "actions.request.executed"]);

    // The auditor: the request and the public key are all it needs.
    const vkey = (await call("GET", "/audit/public-key", viewer.token)).body;
    const report = verifyAction(detail as VerifiableAction, vkey);
    expect(report).toMatchObject({ ok: true, payload_hash_ok: true });
    expect(report.verdicts).toEqual([expect.objectContaining({ verdict: "approve", valid: true, problem: null })]);
    // Tampering with the note, the verdict's approver, the payload or the decision is detected.
    const tampered = structuredClone(detail);
    tampered.approvals[0].note = "rubber-stamped";
    expect(verifyAction(tampered as VerifiableAction, vkey).verdicts[0]!.valid).toBe(false);
    const otherApprover = structuredClone(detail);
    otherApprover.approvals[0].approver.name = "somebody-else";
    expect(verifyAction(otherApprover as VerifiableAction, vkey).ok).toBe(false);
    const otherPayload = structuredClone(detail);
    otherPayload.payload.value = "45.95.168.201";
    const r3 = verifyAction(otherPayload as VerifiableAction, vkey);
    expect(r3.payload_hash_ok).toBe(false);
    expect(r3.verdicts[0]!.valid).toBe(false);
    const otherDecision = structuredClone(detail);
    otherDecision.decision.outcome = "ALLOW";
    expect(verifyAction(otherDecision as VerifiableAction, vkey).ok).toBe(false);
    // The same payload under another action type (block -> unblock) breaks every signature.
    const otherType = structuredClone(detail);
    otherType.action_type = "unblock_entity";
    expect(verifyAction(otherType as VerifiableAction, vkey).ok).toBe(false);
    // A request that went ahead with its verdicts removed, or with fewer required, does not verify.
    const noVerdicts = structuredClone(detail);
    noVerdicts.approvals = [];
    expect(verifyAction(noVerdicts as VerifiableAction, vkey)).toMatchObject({ ok: false, approvals: { valid: 0, required: 1, sufficient: false } });
    const fewerRequired = structuredClone(detail);
    fewerRequired.approvals_required = 0;
    expect(verifyAction(fewerRequired as VerifiableAction, vkey).ok).toBe(false);
  });

  it("refuses every forbidden transition with its code", async () => {
    // Approving one's own request: an admin may approve, but never what they requested.
    const own = await request(t.adminToken, { action_type: "update_policy", payload: { max_failed_auth: 7 } });
    problem(await verb(own.id, "approve", t.adminToken, "mine"), 403, "SEPARATION_OF_DUTIES");
    problem(await verb(own.id, "reject", t.adminToken, "mine"), 403, "SEPARATION_OF_DUTIES");

    // Lockdown needs two approvers (the shipped default rule): the same approver twice is refused,
    // and execution before the second approval is a state conflict.
    const lockdown = await request(analyst.token, { action_type: "set_mode", payload: { mode: "lockdown" }, reason: "active intrusion" });
    expect(lockdown.decision).toMatchObject({ outcome: "REQUIRE_APPROVAL", approvals_required: 2, deciding_rule: { name: "lockdown-needs-two-approvers" } });
    expect(lockdown.dry_run.report.mode).toEqual({ from: "normal", to: "lockdown", changes: true });
    expect(lockdown.dry_run.report.automations.rules_testing_the_mode.map((r: Json) => r.name)).toContain("auto-block-honeypot-attackers-when-elevated");
    const first = await verb(lockdown.id, "approve", approver.token, "agreed");
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ status: "pending", approvals_count: 1 });
    problem(await verb(lockdown.id, "approve", approver.token, "agreed again"), 409, "APPROVAL_DUPLICATE");
    const early = problem(await verb(lockdown.id, "execute", executor.token), 409, "ACTION_STATE_CONFLICT");
    expect(early).toMatchObject({ status: "pending", approvals_count: 1, approvals_required: 2 });
    expect(early.detail).toContain("1 of the 2 approval(s)");
    const second = await verb(lockdown.id, "approve", approver2.token, "agreed too");
    expect(second.json()).toMatchObject({ status: "approved", approvals_count: 2 });
    // An approver cannot execute; the executor can, once.
    problem(await verb(lockdown.id, "execute", approver.token), 403, "FORBIDDEN");
    const executed = await verb(lockdown.id, "execute", executor.token);
    expect(executed.statusCode, executed.body).toBe(200);
    expect(executed.json()).toMatchObject({ status: "executed", result: { policy: { default_mode: "lockdown" } } });
    expect((await call("GET", "/security/policy/", viewer.token)).json().default_mode).toBe("lockdown");
    problem(await verb(lockdown.id, "approve", approver2.token, "late"), 409, "ACTION_STATE_CONFLICT");
    problem(await verb(lockdown.id, "execute", executor.token), 409, "ACTION_STATE_CONFLICT");
    problem(await verb(lockdown.id, "cancel", analyst.token), 409, "ACTION_STATE_CONFLICT");
    expect((await show(lockdown.id)).approvals.map((a: Json) => a.verdict)).toEqual(["approve", "approve"]);

    // Rejected: neither executable nor approvable.
    const rejected = await verb(own.id, "reject", approver.token, "7 is too low for our VPN users");
    expect(rejected.json()).toMatchObject({ status: "rejected" });
    expect(rejected.json().closed_by).toMatch(/^approver-/);
    problem(await verb(own.id, "execute", executor.token), 409, "ACTION_STATE_CONFLICT");
    problem(await verb(own.id, "approve", approver2.token, "no"), 409, "ACTION_STATE_CONFLICT");
    const vkey = (await call("GET", "/audit/public-key", viewer.token)).body;
    expect(verifyAction((await show(own.id)) as VerifiableAction, vkey).verdicts).toEqual([expect.objectContaining({ verdict: "reject", valid: true })]);
    expect((await call("GET", "/security/policy/", viewer.token)).json().max_failed_auth).not.toBe(7);

    // Cancel: the requester or an admin, never another analyst.
    const mine = await request(analyst.token, { action_type: "update_policy", payload: { max_scan_events: 500 } });
    problem(await verb(mine.id, "cancel", analyst2.token, "not yours"), 403, "FORBIDDEN");
    const cancelled = await verb(mine.id, "cancel", analyst.token, "filed twice");
    expect(cancelled.json()).toMatchObject({ status: "cancelled" });
    const theirs = await request(analyst2.token, { action_type: "update_policy", payload: { max_scan_events: 600 } });
    expect((await verb(theirs.id, "cancel", t.adminToken, "admin clean-up")).json().status).toBe("cancelled");
    problem(await verb(theirs.id, "approve", approver.token, "too late"), 409, "ACTION_STATE_CONFLICT");
    expect(await auditActions(mine.id)).toEqual(["actions.request.created", "actions.request.cancelled"]);
  });

  it("needs a dry-run before approving a high-risk type, and executes it through the owning domain", async () => {
    const victim = await createKeyForRole(t.db, "viewer");
    expect((await call("GET", "/auth/whoami", victim.token)).statusCode).toBe(200);
    const keyId = (await call("GET", `/auth/keys?user=${victim.userId}`, t.adminToken)).json() as Json[];
    const id = (Array.isArray(keyId) ? keyId : (keyId as Json).items)[0].id as string;
    const created = await request(analyst.token, { action_type: "revoke_api_key", payload: { key_id: id }, reason: "leaked in a paste", dry_run: false });
    expect(created).toMatchObject({ status: "pending", risk: "high", dry_run: null });
    expect(created.decision.input.entity).toEqual({ type: "api_key" });
    expect(created.decision.input.action.payload.value).toBe(victim.prefix);
    problem(await verb(created.id, "approve", approver.token, "ok"), 409, "DRY_RUN_REQUIRED");
    // A viewer or an executor may not run a dry-run; an approver may.
    problem(await verb(created.id, "dry-run", viewer.token), 403, "FORBIDDEN");
    const dry = await verb(created.id, "dry-run", approver.token);
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json().dry_run.report).toMatchObject({ keys_affected: [victim.prefix], sessions_affected: [], would_fail: null });
    expect((await verb(created.id, "approve", approver.token, "revoke it")).json().status).toBe("approved");
    const done = await verb(created.id, "execute", executor.token);
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json()).toMatchObject({ status: "executed", result: { key: { status: "revoked" } } });
    expect(done.json().executed_by).toMatch(/^executor-/);
    expect((await call("GET", "/auth/whoami", victim.token)).statusCode).toBe(401);
    expect(await auditActions(created.id)).toEqual(["actions.request.created", "actions.request.dry_run", "actions.request.approved", "actions.request.executed"]);
  });

  it("disables a user through the identity service: its keys stop working; disabling the same user again fails on record", async () => {
    const target = await createKeyForRole(t.db, "analyst");
    const created = await request(analyst.token, { action_type: "disable_user", payload: { user: target.userId }, reason: "compromised laptop" });
    expect(created.decision.input.entity).toEqual({ type: "user" });
    expect(created.decision.input.action.payload.value).toMatch(/^analyst-/);
    expect(created.dry_run.report).toMatchObject({ user: { id: target.userId, disabled: false }, sessions_affected: [], keys_affected: [{ prefix: target.prefix }], would_fail: null });
    expect((await verb(created.id, "approve", approver.token, "yes")).json().status).toBe("approved");
    const done = await verb(created.id, "execute", executor.token);
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json().result).toEqual({ user: { id: target.userId, username: created.decision.input.action.payload.value, disabled: true } });
    expect((await call("GET", "/auth/whoami", target.token)).statusCode).toBe(401);
    const again = await request(analyst.token, { action_type: "disable_user", payload: { user: target.userId } });
    expect(again.dry_run.report.would_fail).toContain("already disabled");
    expect((await verb(again.id, "approve", approver.token, "yes")).statusCode).toBe(200);
    const failed = problem(await verb(again.id, "execute", executor.token), 422, "ACTION_EXECUTION_FAILED");
    expect(failed.detail).toContain("ACTION_TARGET_UNCHANGED");
    expect((await show(again.id)).status).toBe("failed");
  });

  it("DENY refuses creation with the explanation and stores only the decision and the refusal", async () => {
    const before = (await call("GET", "/security/actions/?limit=1000", viewer.token)).json().items.length;
    const res = await call("POST", "/security/actions/", analyst.token, { action_type: "block_entity", payload: { entity_type: "ip", value: "10.1.2.3" }, reason: "typo" });
    const body = problem(res, 403, "ACTION_DENIED_BY_POLICY");
    // The shipped default guardrail (priority 1000) decides before the suite's own rule.
    expect(body.detail).toContain("DENY by rule never-block-special-networks v1");
    expect(body.decision).toMatchObject({ outcome: "DENY", deciding_rule: { name: "never-block-special-networks", version: 1 } });
    expect((await call("GET", "/security/actions/?limit=1000", viewer.token)).json().items.length).toBe(before);
    const recorded = await call("GET", `/rules/decisions/${body.decision.decision_id}`, viewer.token);
    expect(recorded.statusCode).toBe(200);
    expect(recorded.json()).toMatchObject({ outcome: "DENY", subject: { type: "action_request" } });
    const refusal = (await call("GET", `/audit/entries?target_type=action_request&target_id=${recorded.json().subject.id}`, viewer.token)).json().items as Json[];
    expect(refusal.map((e) => e.action)).toEqual(["actions.request.denied"]);
    expect(refusal[0]!.details).toMatchObject({ action_type: "block_entity", payload: { entity_type: "ip", value: "10.1.2.3" } });
    expect((await checkIp("10.1.2.3")).blocked).toBe(false);
  });

  it("DRY_RUN_ONLY runs the simulation and stops there", async () => {
    const created = await request(analyst.token, { action_type: "block_entity", payload: { entity_type: "user", value: "mallory" }, dry_run: false });
    expect(created).toMatchObject({ status: "dry_run_only", decision: { outcome: "DRY_RUN_ONLY", deciding_rule: { name: "test-user-blocks-dry-run-only" } } });
    expect(created.dry_run.report.would_create).toMatchObject({ entity_type: "user", value: "mallory" });
    problem(await verb(created.id, "approve", approver.token, "go"), 409, "ACTION_STATE_CONFLICT");
    problem(await verb(created.id, "execute", executor.token), 409, "ACTION_STATE_CONFLICT");
    expect((await call("GET", "/security/policy/check?user=mallory", viewer.token)).json().blocked).toBe(false);
    expect(await auditActions(created.id)).toEqual(["actions.request.dry_run_only", "actions.request.dry_run"]);
  });

  it("expires pending requests at transition time and by the sweep", async () => {
    const someone = await createKeyForRole(t.db, "viewer");
    const short = await request(analyst.token, { action_type: "disable_user", payload: { user: someone.userId } });
    expect(new Date(short.expires_at).getTime() - new Date(short.created_at).getTime()).toBe(3_600_000);
    const long = await request(analyst.token, { action_type: "update_policy", payload: { notes: "expiry test" } });
    expect(new Date(long.expires_at).getTime() - new Date(long.created_at).getTime()).toBe(86_400_000);
    clock.advance(3_600_001);
    const late = problem(await verb(short.id, "approve", approver.token, "late"), 409, "ACTION_EXPIRED");
    expect(late.expires_at).toBe(short.expires_at);
    const expired = await show(short.id);
    expect(expired).toMatchObject({ status: "expired", closed_by: "system:expiry", closed_at: short.expires_at });
    expect(expired.history.at(-1)).toMatchObject({ event: "expired", from: "pending", to: "expired", actor: "system:expiry" });
    expect((await call("GET", "/auth/whoami", someone.token)).statusCode).toBe(200);
    clock.advance(86_400_000);
    expect(await t.app.services.actions.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect((await show(long.id)).status).toBe("expired");
    expect(await auditActions(long.id)).toEqual(["actions.request.created", "actions.request.expired"]);
    problem(await verb(long.id, "cancel", analyst.token), 409, "ACTION_STATE_CONFLICT");
  });

  it("records a failed execution with its reason and leaves the domain unchanged", async () => {
    // The address gets blocked directly while the request waits: the system's execution after approval fails.
    const created = await request(analyst.token, { action_type: "block_entity", payload: { entity_type: "ip", value: "185.220.101.77", duration_seconds: 3600 } });
    const direct = await call("POST", "/security/policy/blocks", t.adminToken, { entity_type: "ip", value: "185.220.101.77", reason: "manual" });
    expect(direct.statusCode).toBe(201);
    const approved = await verb(created.id, "approve", approver.token, "yes");
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({ status: "failed", result: null });
    expect(approved.json().failure_reason).toContain("BLOCK_EXISTS");
    const blocks = (await call("GET", "/security/policy/blocks?q=185.220.101.77&limit=100", viewer.token)).json().items as Json[];
    expect(blocks.map((b) => b.id)).toEqual([direct.json().id]);
    expect(await auditActions(created.id)).toEqual(["actions.request.created", "actions.request.approved", "actions.request.failed"]);
    problem(await verb(created.id, "execute", executor.token), 409, "ACTION_STATE_CONFLICT");

    // An unknown sensor: the dry-run says so and the execution fails cleanly (test/sensors.test.ts deactivates a real one).
    const honeypot = await request(analyst.token, { action_type: "deactivate_honeypot", payload: { sensor_id: "ssh-trap-1" } });
    expect(honeypot.dry_run.report.would_fail).toContain("no sensor with id ssh-trap-1");
    expect((await verb(honeypot.id, "approve", approver.token, "ok")).json().status).toBe("approved");
    const failed = problem(await verb(honeypot.id, "execute", executor.token), 422, "ACTION_EXECUTION_FAILED");
    expect(failed.action).toMatchObject({ status: "failed" });
    expect((await show(honeypot.id)).failure_reason).toContain("no sensor with id ssh-trap-1");
  });

  it("executes an allowed type at once when auto-execution is configured for it", async () => {
    const block = await call("POST", "/security/policy/blocks", t.adminToken, { entity_type: "ip", value: "185.220.101.55", reason: "to be lifted" });
    expect((await checkIp("185.220.101.55")).blocked).toBe(true);
    const created = await request(analyst.token, { action_type: "unblock_entity", payload: { entity_type: "ip", value: "185.220.101.55" }, reason: "false positive" });
    expect(created).toMatchObject({ status: "executed", approvals_required: 0, approved_by: "policy:test-unblocks-allowed", executed_by: "system:actions", result: { block: { id: block.json().id, active: false } } });
    expect((await checkIp("185.220.101.55")).blocked).toBe(false);
    expect((await show(created.id)).history.map((h: Json) => h.event)).toEqual(["created", "executed"]);
  });

  it("answers bad input with problem+json naming the field", async () => {
    const unknown = problem(await call("POST", "/security/actions/", analyst.token, { action_type: "nuke_site", payload: {} }), 400, "UNKNOWN_ACTION_TYPE");
    expect(unknown.errors).toEqual([expect.objectContaining({ path: "action_type" })]);
    const badPayload = problem(await call("POST", "/security/actions/", analyst.token, { action_type: "block_entity", payload: { entity_type: "host", value: "x", extra: 1 } }), 400, "VALIDATION_FAILED");
    expect(badPayload.errors.map((e: Json) => e.path).sort()).toEqual(["payload.entity_type", "payload.extra"]);
    const spoof = problem(await call("POST", "/security/actions/", analyst.token, { action_type: "set_mode", payload: { mode: "elevated" }, requested_by: "Heimdall" }), 400, "VALIDATION_FAILED");
    expect(spoof.errors).toEqual([{ path: "requested_by", message: "unknown field" }]);
    problem(await call("POST", "/security/actions/", analyst.token, { action_type: "revoke_api_key", payload: { key_id: "00000000-0000-4000-8000-000000000000" } }), 404, "API_KEY_NOT_FOUND");
    problem(await call("GET", "/security/actions/not-a-uuid", viewer.token), 404, "ACTION_NOT_FOUND");
    problem(await call("GET", "/security/actions/?status=done", viewer.token), 400, "VALIDATION_FAILED");
    problem(await call("POST", "/security/actions/00000000-0000-4000-8000-000000000000/approve", approver.token, { note: "x" }), 404, "ACTION_NOT_FOUND");
    problem(await call("POST", "/security/actions/", viewer.token, { action_type: "set_mode", payload: { mode: "elevated" } }), 403, "FORBIDDEN");
  });

  it("lists with filters and pagination, and maps the seed's status update onto the verbs", async () => {
    const a = await request(analyst2.token, { action_type: "update_policy", payload: { max_failed_auth: 9 } });
    const b = await request(analyst2.token, { action_type: "update_policy", payload: { max_failed_auth: 10 } });
    const page1 = (await call("GET", `/security/actions/?requested_by=${analyst2.userId}&status=pending&type=update_policy&limit=1`, viewer.token)).json();
    expect(page1.items.map((i: Json) => i.id)).toEqual([b.id]);
    const page2 = (await call("GET", `/security/actions/?requested_by=${analyst2.userId}&status=pending&limit=1&cursor=${page1.next_cursor}`, viewer.token)).json();
    expect(page2.items.map((i: Json) => i.id)).toEqual([a.id]);
    const future = (await call("GET", `/security/actions/?created_from=${encodeURIComponent(new Date(clock.now().getTime() + 1000).toISOString())}`, viewer.token)).json();
    expect(future.items).toEqual([]);

    problem(await call("POST", `/security/actions/${a.id}`, viewer.token, { status: "approved", note: "" }), 403, "FORBIDDEN");
    const viaSeed = await call("POST", `/security/actions/${a.id}`, approver.token, { status: "approved", note: "seed-style" });
    expect(viaSeed.statusCode, viaSeed.body).toBe(200);
    expect(viaSeed.json().status).toBe("approved");
    const exec = await call("POST", `/security/actions/${a.id}`, executor.token, { status: "executed", note: "" });
    expect(exec.json()).toMatchObject({ status: "executed", result: { policy: { max_failed_auth: 9 } } });
    const rej = await call("POST", `/security/actions/${b.id}`, approver.token, { status: "rejected", note: "superseded" });
    expect(rej.json().status).toBe("rejected");
    problem(await call("POST", `/security/actions/${b.id}`, approver.token, { status: "pending", note: "" }), 400, "VALIDATION_FAILED");
  });
});

// Out of the box: no rules of the suite's own, only the shipped default set deciding.
describe.each(DB_KINDS)("action workflow with the shipped default rules on %s", (kind) => {
  let t: TestApp;
  let analyst: Key, approver: Key, executor: Key;
  beforeAll(async () => {
    t = await createTestApp(kind);
    analyst = await createKeyForRole(t.db, "analyst");
    approver = await createKeyForRole(t.db, "approver");
    executor = await createKeyForRole(t.db, "executor");
  });
  afterAll(async () => t?.close());
  const call = (method: "GET" | "POST", url: string, token: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const create = (payload: Json) => call("POST", "/security/actions/", analyst.token, { ...payload, reason: "default rules" });

  it("decides each type as the seed's six policies say, and a public block goes request -> approve -> execute -> enforced", async () => {
    const loopback = await create({ action_type: "block_entity", payload: { entity_type: "ip", value: "127.0.0.1" } });
    expect(loopback.statusCode).toBe(403);
    expect(loopback.json().decision.deciding_rule.name).toBe("never-block-special-networks");

    const broad = (await create({ action_type: "block_entity", payload: { entity_type: "cidr", value: "5.188.0.0/16" } })).json();
    expect(broad.decision).toMatchObject({ outcome: "REQUIRE_APPROVAL", deciding_rule: { name: "broad-cidr-needs-approval" } });

    const lockdown = (await create({ action_type: "set_mode", payload: { mode: "lockdown" } })).json();
    expect(lockdown).toMatchObject({ status: "pending", approvals_required: 2, decision: { deciding_rule: { name: "lockdown-needs-two-approvers" } } });

    const key = (await call("POST", "/auth/keys", t.adminToken, { name: "to revoke", role: "viewer" })).json();
    const revoke = await create({ action_type: "revoke_api_key", payload: { key_id: key.id } });
    expect(revoke.statusCode, revoke.body).toBe(201);
    expect(revoke.json()).toMatchObject({ status: "dry_run_only", decision: { outcome: "DRY_RUN_ONLY", deciding_rule: { name: "unknown-action-types-dry-run" } } });

    const single = (await create({ action_type: "block_entity", payload: { entity_type: "ip", value: "5.188.86.172" } })).json();
    expect(single).toMatchObject({ status: "pending", approvals_required: 1, decision: { outcome: "REQUIRE_APPROVAL", default_applied: true } });
    expect((await call("POST", `/security/actions/${single.id}/approve`, analyst.token, { note: "mine" })).statusCode).toBe(403);
    expect((await call("POST", `/security/actions/${single.id}/approve`, approver.token, { note: "seen the evidence" })).json().status).toBe("approved");
    expect((await call("POST", `/security/actions/${single.id}/execute`, executor.token)).json().status).toBe("executed");
    expect((await call("GET", "/security/policy/check?ip=5.188.86.172", analyst.token)).json().blocked).toBe(true);
  });
});
