// An event's identity for deduplication: 16 bytes of SHA-256 over (sensor, sender's event id) or,
// when the sender gives no id, (sensor, exact raw text). Domain separation and length prefixes keep
// the two kinds and the field boundaries from ever colliding ("ab"+"c" vs "a"+"bc"). 128 bits make
// an accidental collision (which would silently drop an event as a duplicate) negligible at any
// volume we will store; see docs/decisions/0007-telemetry-storage.md for why not hex or a uuid.
import { hash } from "node:crypto";
import type { NormalizedEvent } from "./types.ts";

const DOMAIN = Buffer.from("portcullis/sensors/event-key/v1\n", "utf8");
const KIND_EVENT_ID = 1;
const KIND_RAW = 2;

export const EVENT_KEY_BYTES = 16;

/**
 * Hashes domain || u32be(len sensor) || sensor || kind || u32be(len data) || data (UTF-8), one
 * buffer and one call: this runs once per ingested event.
 */
export const eventKey = (sensorId: string, ev: Pick<NormalizedEvent, "eventId" | "rawOriginal">): Buffer => {
  const data = ev.eventId !== null ? ev.eventId : ev.rawOriginal;
  const sensorBytes = Buffer.byteLength(sensorId, "utf8");
  const dataBytes = Buffer.byteLength(data, "utf8");
  const buf = Buffer.allocUnsafe(DOMAIN.length + 4 + sensorBytes + 1 + 4 + dataBytes);
  let at = DOMAIN.copy(buf, 0);
  at = buf.writeUInt32BE(sensorBytes, at);
  at += buf.write(sensorId, at, "utf8");
  at = buf.writeUInt8(ev.eventId !== null ? KIND_EVENT_ID : KIND_RAW, at);
  at = buf.writeUInt32BE(dataBytes, at);
  buf.write(data, at, "utf8");
  return (hash("sha256", buf, "buffer") as unknown as Buffer).subarray(0, EVENT_KEY_BYTES);
};
