import { describe, expect, it } from "vitest";
import { uuidv7 } from "./ids.ts";

describe("uuidv7", () => {
  it("is a version 7, variant 10 UUID carrying the timestamp", () => {
    const id = uuidv7(Date.UTC(2026, 10, 23));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBeGreaterThanOrEqual(Date.UTC(2026, 10, 23));
  });
  it("sorts in creation order even within one millisecond", () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7(1_800_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("visiblePrefix", () => {
  it("shows the start of our random keys but nothing of a preset token", async () => {
    const { visiblePrefix, generateApiKey } = await import("../domains/identity/identity.service.ts");
    const key = generateApiKey();
    expect(visiblePrefix(key)).toBe(key.slice(0, 11));
    const preset = "CorrectHorseBatteryStaple-2026";
    expect(visiblePrefix(preset)).toMatch(/^sha256:[0-9a-f]{8}$/);
    expect(preset).not.toContain(visiblePrefix(preset).slice(7, 11));
  });
});
