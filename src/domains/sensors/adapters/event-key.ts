// An event's identity for deduplication: 16 bytes of SHA-256 over (sensor, sender's event id) or,
// when the sender gives no id, (sensor, exact raw text). Domain separation and length prefixes keep
// the two kinds and the field boundaries from ever colliding ("ab"+"c" vs "a"+"bc"). 128 bits make
// an accidental collision (which would silently drop an event as a duplicate) negligible at any
// volume we will store; see docs/decisions/0007-telemetry-storage.md for why not hex or a uuid.
import { createHash } from "node:crypto";
import type { NormalizedEvent } from "./types.ts";

const DOMAIN = Buffer.from("portcullis/sensors/event-key/v1\n", "utf8");
const KIND_EVENT_ID = Buffer.from([1]);
const KIND_RAW = Buffer.from([2]);

const lengthPrefix = (bytes: number): Buffer => {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(bytes, 0);
  return out;
};

export const EVENT_KEY_BYTES = 16;

export const eventKey = (sensorId: string, ev: Pick<NormalizedEvent, "eventId" | "rawOriginal">): Buffer => {
  const sensor = Buffer.from(sensorId, "utf8");
  const hash = createHash("sha256").update(DOMAIN).update(lengthPrefix(sensor.length)).update(sensor);
  const data = ev.eventId !== null ? ev.eventId : ev.rawOriginal;
  hash.update(ev.eventId !== null ? KIND_EVENT_ID : KIND_RAW);
  hash.update(lengthPrefix(Buffer.byteLength(data, "utf8")));
  hash.update(data, "utf8");
  return hash.digest().subarray(0, EVENT_KEY_BYTES);
};
