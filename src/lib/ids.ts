// Identifiers: UUIDv7 (RFC 9562), time-ordered so rows created in the same millisecond still sort in
// creation order (keyset pagination breaks ties on id) and index inserts stay append-mostly.
import { randomBytes } from "node:crypto";

let lastMs = 0;
let sequence = 0;

export const uuidv7 = (nowMs = Date.now()): string => {
  // 12-bit counter in rand_a keeps ids monotonic within one millisecond (RFC 9562 method 1).
  if (nowMs <= lastMs) {
    sequence++;
    if (sequence > 0xfff) {
      lastMs++;
      sequence = 0;
    }
  } else {
    lastMs = nowMs;
    sequence = 0;
  }
  const bytes = randomBytes(16);
  const ms = lastMs;
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
  bytes[2] = (ms >>> 24) & 0xff;
  bytes[3] = (ms >>> 16) & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
  bytes[6] = 0x70 | ((sequence >>> 8) & 0x0f);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
