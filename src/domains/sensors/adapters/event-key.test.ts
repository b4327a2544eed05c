// Event keys: 16 bytes, stable across releases (a pinned vector), and distinct across sensors and
// across the two kinds of identity (sender's id vs raw text).
import { describe, expect, it } from "vitest";
import { eventKey } from "./event-key.ts";

const S1 = "0190a0b0-0000-7000-8000-000000000001";
const S2 = "0190a0b0-0000-7000-8000-000000000002";

describe("eventKey", () => {
  it("is 16 bytes and deterministic", () => {
    const k = eventKey(S1, { eventId: null, rawOriginal: '{"a":1}' });
    expect(k.length).toBe(16);
    expect(eventKey(S1, { eventId: null, rawOriginal: '{"a":1}' }).equals(k)).toBe(true);
  });

  // Vectors computed outside this code (Python: sha256(domain || u32 len || sensor || kind || u32 len || data)[:16]).
  it("never changes for the same input (stored keys must keep matching retries)", () => {
    expect(eventKey(S1, { eventId: "evt-1", rawOriginal: "ignored" }).toString("hex")).toBe("ef67753c864bfff39294a046f3826d64");
    expect(eventKey(S1, { eventId: null, rawOriginal: '{"a":1}' }).toString("hex")).toBe("963fd0bcaf588d0717068c47d14c20e4");
  });

  it("uses the event id when there is one, whatever the raw bytes", () => {
    expect(eventKey(S1, { eventId: "e", rawOriginal: "a" }).equals(eventKey(S1, { eventId: "e", rawOriginal: "b" }))).toBe(true);
  });

  it("differs by sensor, by kind and by the bytes", () => {
    const keys = [
      eventKey(S1, { eventId: "x", rawOriginal: "" }),
      eventKey(S2, { eventId: "x", rawOriginal: "" }),
      eventKey(S1, { eventId: null, rawOriginal: "x" }),
      eventKey(S1, { eventId: null, rawOriginal: "x " }),
      eventKey(S1, { eventId: null, rawOriginal: '{"a": 1}' }),
      eventKey(S1, { eventId: null, rawOriginal: '{"a":1}' }),
    ].map((k) => k.toString("hex"));
    expect(new Set(keys).size).toBe(keys.length);
  });
});
