import { describe, expect, it } from "vitest";
import { maskSecrets, REDACTED } from "./logger.ts";

describe("maskSecrets", () => {
  it("masks secret-named keys at any depth and leaves the input untouched", () => {
    const input = { req: { headers: { Authorization: "Bearer pc_x", "X-Api-Key": "k", host: "h" } }, a: [{ b: { c: { d: { password: "p" } } } }], token: "t" };
    const out = maskSecrets(input) as typeof input;
    expect(out.req.headers).toEqual({ Authorization: REDACTED, "X-Api-Key": REDACTED, host: "h" });
    expect(out.a[0]!.b.c.d.password).toBe(REDACTED);
    expect(out.token).toBe(REDACTED);
    expect(input.req.headers.Authorization).toBe("Bearer pc_x");
  });
  it("returns the same object when there is nothing to mask", () => {
    const input = { a: 1, b: { c: [1, 2] } };
    expect(maskSecrets(input)).toBe(input);
  });
  it("masks secrets inside class instances an error carries", () => {
    class Conn {
      password = "hunter2";
    }
    const err = Object.assign(new Error("boom"), { conn: new Conn() });
    expect(JSON.stringify(maskSecrets({ err }))).not.toContain("hunter2");
  });
  it("survives cycles", () => {
    const a: Record<string, unknown> = { secret: "s" };
    a.self = a;
    expect((maskSecrets(a) as Record<string, unknown>).secret).toBe(REDACTED);
  });
});

describe("request URLs in logs", () => {
  it("masks credential-bearing query parameters and keeps the rest", async () => {
    const { maskRequestUrl } = await import("./logger.ts");
    expect(maskRequestUrl("/auth/oidc/callback?code=abc123&state=xyz&iss=https%3A%2F%2Fidp")).toBe(
      "/auth/oidc/callback?code=[redacted]&state=[redacted]&iss=https%3A%2F%2Fidp",
    );
    expect(maskRequestUrl("/security/policy/check?ip=203.0.113.7")).toBe("/security/policy/check?ip=203.0.113.7");
    expect(maskRequestUrl("/x?Token=1&%6Bey=2&flag")).toBe("/x?Token=[redacted]&%6Bey=[redacted]&flag");
    expect(maskRequestUrl("/plain")).toBe("/plain");
  });
});
