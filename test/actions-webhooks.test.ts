// Webhooks of action transitions against a real HTTP receiver started by the test: every delivery
// carries an HMAC-SHA256 signature the receiver checks, a failing endpoint is retried with backoff
// until it answers, a dead endpoint never blocks the workflow, and every attempt is visible on the request.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { installRules } from "./helpers/action-rules.ts";

type Json = Record<string, any>;
const SECRET = "webhook-shared-secret-for-tests-0001";

type Received = { path: string; event: string; signatureOk: boolean; body: Json };

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => resolve(data));
  });

describe.each(DB_KINDS)("action webhooks on %s", (kind) => {
  let t: TestApp;
  let server: Server;
  let closedPort: number;
  const received: Received[] = [];
  let flakyCalls = 0;
  let analyst: string, approver: string, executor: string;

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const raw = await readBody(req);
      const expected = `sha256=${createHmac("sha256", SECRET).update(raw).digest("hex")}`;
      const got = String(req.headers["x-portcullis-signature-256"] ?? "");
      const signatureOk = got.length === expected.length && timingSafeEqual(Buffer.from(got), Buffer.from(expected));
      received.push({ path: req.url ?? "", event: String(req.headers["x-portcullis-event"]), signatureOk, body: JSON.parse(raw) as Json });
      // /flaky fails its first call: the delivery must be retried.
      if (req.url === "/flaky" && flakyCalls++ === 0) res.writeHead(500).end("try later");
      else res.writeHead(signatureOk ? 204 : 401).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    // A port nobody listens on: connection refused.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    t = await createTestApp(kind, {
      config: {
        "actions.webhooks": [`*|http://127.0.0.1:${port}/all`, `approved+executed|http://127.0.0.1:${port}/flaky`, `created|http://127.0.0.1:${closedPort}/dead`],
        "actions.webhookSecret": SECRET,
        "actions.webhookRetryBaseMs": 50,
        "actions.webhookMaxAttempts": 3,
      },
    });
    analyst = (await createKeyForRole(t.db, "analyst")).token;
    approver = (await createKeyForRole(t.db, "approver")).token;
    executor = (await createKeyForRole(t.db, "executor")).token;
    await installRules(t, analyst, approver);
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((r) => server?.close(r));
  });

  const post = (url: string, token: string, payload?: object) => t.app.inject({ method: "POST", url, headers: t.auth(token), ...(payload ? { payload } : {}) });
  const detail = async (id: string) => (await t.app.inject({ method: "GET", url: `/security/actions/${id}`, headers: t.auth() })).json() as Json;

  it("signs every transition's delivery, retries a failing endpoint, and never blocks on a dead one", async () => {
    const created = await post("/security/actions/", analyst, { action_type: "update_policy", payload: { max_scan_events: 250 }, reason: "tune" });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id as string;
    // The workflow goes on while the dead endpoint is still being retried.
    expect((await post(`/security/actions/${id}/approve`, approver, { note: "fine" })).json().status).toBe("approved");
    expect((await post(`/security/actions/${id}/execute`, executor)).json().status).toBe("executed");

    const forRequest = () => received.filter((r) => r.body.action?.id === id);
    await expect.poll(() => forRequest().filter((r) => r.path === "/all").map((r) => r.event), { timeout: 15_000 }).toEqual(["created", "approved", "executed"]);
    await expect.poll(() => forRequest().filter((r) => r.path === "/flaky").length, { timeout: 15_000 }).toBe(3);
    expect(forRequest().every((r) => r.signatureOk)).toBe(true);
    const executed = forRequest().find((r) => r.path === "/all" && r.event === "executed")!;
    expect(executed.body).toMatchObject({ event: "executed", action: { id, status: "executed", result: { policy: { max_scan_events: 250 } } } });
    expect(typeof executed.body.delivery_id).toBe("string");

    // Every attempt is on the request: the flaky endpoint's 500 then success, the dead one's refusals.
    await expect
      .poll(async () => (await detail(id)).webhook_deliveries.map((d: Json) => `${d.event} ${d.url.split("/").pop()} ${d.status}`).sort(), { timeout: 15_000 })
      .toEqual(["approved all delivered", "approved flaky delivered", "created all delivered", "created dead failed", "executed all delivered", "executed flaky delivered"].sort());
    const deliveries = (await detail(id)).webhook_deliveries as Json[];
    const retried = deliveries.filter((d) => d.url.endsWith("/flaky"));
    const firstFlaky = retried.find((d) => d.attempts === 2)!;
    expect(firstFlaky.attempt_log.map((a: Json) => a.status_code)).toEqual([500, 204]);
    expect(firstFlaky.attempt_log[0].error).toBe("HTTP 500");
    const dead = deliveries.find((d) => d.url.endsWith("/dead"))!;
    expect(dead.attempts).toBe(3);
    expect(dead.attempt_log.every((a: Json) => a.status_code === null && typeof a.error === "string")).toBe(true);
    expect(dead.next_attempt_at).toBeNull();
  });
});

describe("webhook URLs as readers see them", () => {
  it("keep the origin and the first path segment only", async () => {
    const { maskHookUrl } = await import("../src/domains/actions/actions.service.ts");
    expect(maskHookUrl("https://hooks.slack.com/services/T000/B000/XXXXSECRET")).toBe("https://hooks.slack.com/services/…");
    expect(maskHookUrl("https://soc.example.org/hook?token=abc")).toBe("https://soc.example.org/hook/…");
    expect(maskHookUrl("http://127.0.0.1:9000/all")).toBe("http://127.0.0.1:9000/all");
  });
});
