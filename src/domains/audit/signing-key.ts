// The Ed25519 key that signs audit checkpoints. From config (`signing.privateKey`, PEM, usually via
// file:/path); in the local and dev profiles, generated once into the data dir so a first start just
// works. Any other profile without a key refuses to start.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { ConfigError, type Config } from "../../config/index.ts";
import { ed25519RawPublicKey } from "../../lib/signed-note.ts";

export type SigningKey = { privateKey: KeyObject; publicKeyRaw: Buffer; origin: string; source: string };

export const SIGNING_KEY_FILE = "audit-signing-key.pem";

const loadPem = (pem: string, source: string): KeyObject => {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== "ed25519")
    throw new ConfigError("signing.privateKey", source, `invalid config: ${source}: the audit signing key must be Ed25519, not ${key.asymmetricKeyType}`);
  return key;
};

export const resolveSigningKey = (config: Config): SigningKey => {
  let privateKey: KeyObject;
  let source: string;
  if (config.signing.privateKey) {
    privateKey = loadPem(config.signing.privateKey, "signing.privateKey");
    source = "config signing.privateKey";
  } else if (config.profile === "local" || config.profile === "dev") {
    const path = join(config.dataDir, SIGNING_KEY_FILE);
    if (!existsSync(path)) {
      mkdirSync(config.dataDir, { recursive: true });
      const { privateKey: generated } = generateKeyPairSync("ed25519");
      writeFileSync(path, generated.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
    }
    privateKey = loadPem(readFileSync(path, "utf8"), path);
    source = path;
  } else {
    throw new ConfigError(
      "signing.privateKey",
      "default",
      `invalid config: signing.privateKey is required in the ${config.profile} profile (set PORTCULLIS_SIGNING__PRIVATE_KEY=file:/path/to/ed25519.pem)`,
    );
  }
  const publicKeyRaw = ed25519RawPublicKey(createPublicKey(privateKey));
  // Default origin: stable for the key, so it never changes under an auditor's feet.
  const origin = config.audit.origin ?? `portcullis.local/audit/${createHash("sha256").update(publicKeyRaw).digest("hex").slice(0, 16)}`;
  return { privateKey, publicKeyRaw, origin, source };
};
