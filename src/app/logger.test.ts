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
  it("leaves class instances (raw requests) alone so their getters survive", () => {
    class Req {
      headers = { authorization: "Bearer x" };
      get url() {
        return "/x";
      }
    }
    const req = new Req();
    expect((maskSecrets({ req }) as { req: Req }).req.url).toBe("/x");
  });
  it("survives cycles", () => {
    const a: Record<string, unknown> = { secret: "s" };
    a.self = a;
    expect((maskSecrets(a) as Record<string, unknown>).secret).toBe(REDACTED);
  });
});
