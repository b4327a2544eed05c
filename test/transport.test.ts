// Transport and headers: HTTPS from a configured certificate and key (a self-signed pair made
// here with openssl), helmet's headers, HSTS only over TLS, CORS off by default and opt-in by origin.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config/index.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { createTestApp, TEST_JWT_KEY, TEST_SIGNING_KEY, type TestApp } from "./helpers/harness.ts";

const fetchTls = (url: string, ca: Buffer, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers, servername: "localhost" }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });

describe("HTTPS", () => {
  let dir: string;
  let server: RunningServer;
  let cert: Buffer;
  const token = "pc_transport-test-admin-token-0123456789";
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-tls-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    cert = readFileSync(join(dir, "cert.pem"));
    const loaded = loadConfig({
      flags: {
        port: 0,
        dataDir: join(dir, "data"),
        "log.level": "silent",
        "http.tlsCertFile": join(dir, "cert.pem"),
        "http.tlsKeyFile": join(dir, "key.pem"),
        bootstrapAdminToken: token,
        "signing.privateKey": TEST_SIGNING_KEY,
        "auth.jwtPrivateKey": TEST_JWT_KEY,
      },
      env: {},
      cwd: dir,
    });
    server = await startServer(loaded);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the API over TLS with HSTS and the helmet headers", async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetchTls(`${server.url}/auth/whoami`, cert, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ username: "admin", role: "admin" });
    expect(res.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["x-frame-options"]).toBe("SAMEORIGIN");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
  });

  it("refuses a client that does not trust the certificate, and plain HTTP on the TLS port", async () => {
    await expect(fetchTls(`${server.url}/healthz`, Buffer.from(""))).rejects.toThrow(/self.signed|certificate/i);
    const plain = server.url.replace("https:", "http:");
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest(`${plain}/healthz`, (res) => resolve(`status ${res.statusCode}`));
      req.on("error", (e) => resolve(`error ${e.message}`));
      req.setTimeout(3000, () => req.destroy(new Error("timeout")));
      req.end();
    });
    expect(outcome).not.toBe("status 200");
  });
});

describe("headers over plain HTTP", () => {
  let t: TestApp;
  let withCors: TestApp;
  beforeAll(async () => {
    t = await createTestApp("pglite");
    withCors = await createTestApp("pglite", { config: { "http.corsOrigins": ["https://console.example.org"] } });
  });
  afterAll(async () => {
    await t?.close();
    await withCors?.close();
  });

  it("sends no HSTS without TLS, and the helmet headers on errors too", async () => {
    const res = await t.app.inject({ method: "GET", url: "/security/policy/" });
    expect(res.statusCode).toBe(401);
    expect(res.headers["strict-transport-security"]).toBeUndefined();
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
  });

  it("answers no CORS by default", async () => {
    const preflight = await t.app.inject({
      method: "OPTIONS",
      url: "/security/policy/",
      headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
    });
    expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
    const get = await t.app.inject({ method: "GET", url: "/healthz", headers: { origin: "https://evil.example" } });
    expect(get.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("allows exactly the configured origins", async () => {
    const ok = await withCors.app.inject({
      method: "OPTIONS",
      url: "/security/policy/",
      headers: { origin: "https://console.example.org", "access-control-request-method": "GET" },
    });
    expect(ok.statusCode).toBeLessThan(300);
    expect(ok.headers["access-control-allow-origin"]).toBe("https://console.example.org");
    const other = await withCors.app.inject({ method: "GET", url: "/healthz", headers: { origin: "https://evil.example" } });
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
