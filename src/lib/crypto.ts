// Small wrappers over node:crypto used across domains (no hand-rolled primitives).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/** URL-safe random token of `bytes` random bytes. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString("base64url");

export const constantTimeEqual = (a: string, b: string): boolean => {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
};
