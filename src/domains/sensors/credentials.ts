// The credential vault: credentials captured by sensors (honeypot passwords, tokens in commands)
// sealed with AES-256-GCM under a configured key, or dropped, per sensors.credentials:
//   encrypted: sealed; readers with telemetry:secrets see them opened, others masked
//   redacted:  never stored (seal returns null)
//   plain:     the service keeps the raw original instead; nothing is sealed here either
// Keys are "id:base64(32 bytes)"; the first seals, all open, so rotation is: prepend a new key,
// keep the old ones until nothing sealed under them is retained. Each record names its key id,
// which is also bound as associated data: a ciphertext moved to another key id fails to open.
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, type Config } from "../../config/index.ts";

export const CREDENTIAL_MODES = ["encrypted", "redacted", "plain"] as const;
export type CredentialMode = (typeof CREDENTIAL_MODES)[number];

export const MASK = "********";
const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const AAD_PREFIX = "portcullis/sensors/secrets/v1\n";

export class VaultError extends Error {
  constructor(
    readonly code: "VAULT_KEY_INVALID" | "VAULT_KEY_UNKNOWN" | "VAULT_CIPHERTEXT_INVALID" | "VAULT_NO_KEY",
    message: string,
  ) {
    super(message);
    this.name = "VaultError";
  }
}

export type VaultKey = { id: string; key: Buffer };

/** Parses "id:base64" (standard or URL-safe base64 of exactly 32 bytes). The message never shows the key. */
export const parseVaultKey = (text: string, index = 0): VaultKey => {
  const colon = text.indexOf(":");
  const id = colon > 0 ? text.slice(0, colon) : "";
  if (!KEY_ID.test(id)) throw new VaultError("VAULT_KEY_INVALID", `sensors.credentialKeys[${index}]: expected "<id>:<base64 of 32 bytes>" with an id of letters, digits, . _ -`);
  const encoded = text.slice(colon + 1).trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded) ? Buffer.from(encoded, encoded.includes("-") || encoded.includes("_") ? "base64url" : "base64") : Buffer.alloc(0);
  if (key.length !== 32) throw new VaultError("VAULT_KEY_INVALID", `sensors.credentialKeys[${index}] (key id ${id}): the key must be base64 of exactly 32 bytes (got ${key.length})`);
  return { id, key };
};

export const generateVaultKey = (id: string): string => `${id}:${randomBytes(32).toString("base64")}`;

const aad = (keyId: string) => Buffer.from(AAD_PREFIX + keyId, "utf8");

// Nonces come from a pool refilled 4,096 at a time: one CSPRNG call per event was a visible share
// of ingestion. Every nonce is still 96 fresh random bits, used once.
const NONCE_POOL = Buffer.alloc(NONCE_BYTES * 4096);
let noncePos = NONCE_POOL.length;
const nextNonce = (): Buffer => {
  if (noncePos === NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    noncePos = 0;
  }
  const nonce = Buffer.from(NONCE_POOL.subarray(noncePos, noncePos + NONCE_BYTES));
  noncePos += NONCE_BYTES;
  return nonce;
};

export type CredentialVault = {
  mode: CredentialMode;
  /** The key id new records are sealed under (null unless encrypted). */
  currentKeyId: string | null;
  seal(secrets: Record<string, string>): { ciphertext: Buffer; keyId: string } | null;
  open(ciphertext: Buffer, keyId: string): Record<string, string>;
  mask(secrets: Record<string, string>): Record<string, string>;
};

export const credentialVault = (options: { mode: CredentialMode; keys: readonly string[] }): CredentialVault => {
  const keys = options.keys.map((k, i) => parseVaultKey(k, i));
  const byId = new Map<string, Buffer>();
  for (const { id, key } of keys) {
    if (byId.has(id)) throw new VaultError("VAULT_KEY_INVALID", `sensors.credentialKeys: key id ${id} appears twice`);
    byId.set(id, key);
  }
  if (options.mode === "encrypted" && keys.length === 0) throw new VaultError("VAULT_NO_KEY", "sensors.credentials is encrypted but sensors.credentialKeys is empty");
  const current = options.mode === "encrypted" ? keys[0]! : null;
  const currentAad = current ? aad(current.id) : null;

  const seal = (secrets: Record<string, string>) => {
    if (!current || !currentAad) return null;
    let empty = true;
    for (const _ in secrets) {
      empty = false;
      break;
    }
    if (empty) return null;
    const nonce = nextNonce();
    const cipher = createCipheriv("aes-256-gcm", current.key, nonce);
    cipher.setAAD(currentAad);
    const body = Buffer.concat([cipher.update(JSON.stringify(secrets), "utf8"), cipher.final()]);
    return { ciphertext: Buffer.concat([Buffer.from([VERSION]), nonce, body, cipher.getAuthTag()]), keyId: current.id };
  };

  const open = (ciphertext: Buffer, keyId: string): Record<string, string> => {
    const key = byId.get(keyId);
    if (!key) throw new VaultError("VAULT_KEY_UNKNOWN", `captured credentials were sealed under key id ${JSON.stringify(keyId)}, which is not in sensors.credentialKeys`);
    if (ciphertext.length < 1 + NONCE_BYTES + TAG_BYTES || ciphertext[0] !== VERSION)
      throw new VaultError("VAULT_CIPHERTEXT_INVALID", `sealed credentials (key id ${keyId}) are truncated or of an unknown format`);
    const decipher = createDecipheriv("aes-256-gcm", key, ciphertext.subarray(1, 1 + NONCE_BYTES));
    decipher.setAAD(aad(keyId));
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
    let plain: string;
    try {
      plain = Buffer.concat([decipher.update(ciphertext.subarray(1 + NONCE_BYTES, ciphertext.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch {
      throw new VaultError("VAULT_CIPHERTEXT_INVALID", `sealed credentials (key id ${keyId}) failed authentication: tampered with, or sealed under a different key with this id`);
    }
    return JSON.parse(plain) as Record<string, string>;
  };

  const mask = (secrets: Record<string, string>) => Object.fromEntries(Object.keys(secrets).map((k) => [k, MASK]));

  return { mode: options.mode, currentKeyId: current?.id ?? null, seal, open, mask };
};

export const CREDENTIAL_KEY_FILE = "sensor-credential-key";

/**
 * The vault keys: sensors.credentialKeys when set; otherwise, in the local profile only, one key
 * generated once into the data dir (like the JWT key). Any other profile in encrypted mode without
 * keys refuses to start (prod already refuses at config load).
 */
export const resolveCredentialKeys = (config: Config): { keys: string[]; source: string } => {
  const configured = config.sensors.credentialKeys;
  if (configured.length) {
    configured.forEach((k, i) => {
      try {
        parseVaultKey(k, i);
      } catch (err) {
        throw new ConfigError("sensors.credentialKeys", "config", `invalid config: ${(err as Error).message}`);
      }
    });
    return { keys: [...configured], source: "config sensors.credentialKeys" };
  }
  if (config.sensors.credentials !== "encrypted") return { keys: [], source: "none (not encrypting)" };
  if (config.profile !== "local") {
    throw new ConfigError(
      "sensors.credentialKeys",
      "default",
      `invalid config: sensors.credentialKeys is required in the ${config.profile} profile while sensors.credentials is encrypted ` +
        `(set PORTCULLIS_SENSORS__CREDENTIAL_KEYS=file:/path/to/keys with "<id>:<base64 of 32 bytes>", or sensors.credentials=redacted)`,
    );
  }
  const path = join(config.dataDir, CREDENTIAL_KEY_FILE);
  if (!existsSync(path)) {
    mkdirSync(config.dataDir, { recursive: true });
    try {
      writeFileSync(path, `${generateVaultKey("local")}\n`, { mode: 0o600, flag: "wx" });
    } catch (error) {
      // Another process created it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  const key = readFileSync(path, "utf8").trim();
  parseVaultKey(key);
  return { keys: [key], source: path };
};

/** The vault as configured (keys resolved as above). */
export const credentialVaultFromConfig = (config: Config): CredentialVault =>
  credentialVault({ mode: config.sensors.credentials, keys: resolveCredentialKeys(config).keys });
