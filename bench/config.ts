// The config benches build their in-process apps with: fresh signing keys, silent logs, no rate limits.
import { generateKeyPairSync } from "node:crypto";
import { loadConfig, type Config } from "../src/config/index.ts";

const pem = () => generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();

export const benchConfig = (flags: Record<string, unknown> = {}): Config =>
  loadConfig({
    flags: { "log.level": "silent", "signing.privateKey": pem(), "auth.jwtPrivateKey": pem(), "rateLimit.enabled": false, "audit.origin": "bench.portcullis/audit", ...flags },
    env: {},
    cwd: process.cwd(),
  }).config;
