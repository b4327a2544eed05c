// The credential vault: AES-256-GCM round trips, rotation (first key seals, all open), key ids
// bound as associated data, tamper detection, and the modes that never seal.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../config/index.ts";
import {
  CREDENTIAL_KEY_FILE,
  credentialVault,
  credentialVaultFromConfig,
  generateVaultKey,
  MASK,
  parseVaultKey,
  resolveCredentialKeys,
  VaultError,
} from "./credentials.ts";

const K1 = generateVaultKey("k1");
const K2 = generateVaultKey("k2");
const SECRETS = { password: "hunter2", "command.basic_auth": "p@ss:wörd" };

const vaultError = (fn: () => unknown): VaultError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VaultError);
    return err as VaultError;
  }
  throw new Error("expected a VaultError");
};

describe("credentialVault (encrypted)", () => {
  it("seals under the first key and opens again; ciphertexts differ (random nonce) and hide the plaintext", () => {
    const vault = credentialVault({ mode: "encrypted", keys: [K1, K2] });
    const a = vault.seal(SECRETS)!;
    const b = vault.seal(SECRETS)!;
    expect(a.keyId).toBe("k1");
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    expect(a.ciphertext.toString("latin1")).not.toContain("hunter2");
    expect(a.ciphertext.length).toBe(1 + 12 + Buffer.byteLength(JSON.stringify(SECRETS)) + 16);
    expect(vault.open(a.ciphertext, a.keyId)).toEqual(SECRETS);
  });

  it("opens records sealed under an older key after rotation", () => {
    const before = credentialVault({ mode: "encrypted", keys: [K1] }).seal(SECRETS)!;
    const rotated = credentialVault({ mode: "encrypted", keys: [K2, K1] });
    expect(rotated.seal(SECRETS)!.keyId).toBe("k2");
    expect(rotated.open(before.ciphertext, "k1")).toEqual(SECRETS);
  });

  it("refuses an unknown key id with a message naming it", () => {
    const sealed = credentialVault({ mode: "encrypted", keys: [K1] }).seal(SECRETS)!;
    const err = vaultError(() => credentialVault({ mode: "encrypted", keys: [K2] }).open(sealed.ciphertext, "k1"));
    expect(err.code).toBe("VAULT_KEY_UNKNOWN");
    expect(err.message).toContain('"k1"');
  });

  it("detects tampering: any flipped bit, truncation, or a record relabelled to another key id", () => {
    const vault = credentialVault({ mode: "encrypted", keys: [K1, K2] });
    const { ciphertext } = vault.seal(SECRETS)!;
    for (let i = 0; i < ciphertext.length; i++) {
      const bad = Buffer.from(ciphertext);
      bad[i]! ^= 0x01;
      expect(vaultError(() => vault.open(bad, "k1")).code).toBe("VAULT_CIPHERTEXT_INVALID");
    }
    expect(vaultError(() => vault.open(ciphertext.subarray(0, 20), "k1")).code).toBe("VAULT_CIPHERTEXT_INVALID");
    // Same key bytes under another id: the id is bound as associated data.
    const k1Bytes = K1.slice(3);
    const alias = credentialVault({ mode: "encrypted", keys: [K1, `alias:${k1Bytes}`] });
    expect(vaultError(() => alias.open(ciphertext, "alias")).code).toBe("VAULT_CIPHERTEXT_INVALID");
    expect(alias.open(ciphertext, "k1")).toEqual(SECRETS);
  });

  it("seals nothing when there is nothing to seal", () => {
    expect(credentialVault({ mode: "encrypted", keys: [K1] }).seal({})).toBeNull();
  });
});

describe("credentialVault: other modes and key parsing", () => {
  it("never seals in redacted or plain mode, and needs no key there", () => {
    for (const mode of ["redacted", "plain"] as const) {
      const vault = credentialVault({ mode, keys: [] });
      expect(vault.seal(SECRETS)).toBeNull();
      expect(vault.currentKeyId).toBeNull();
    }
  });

  it("masks every value", () => {
    expect(credentialVault({ mode: "redacted", keys: [] }).mask(SECRETS)).toEqual({ password: MASK, "command.basic_auth": MASK });
  });

  it("refuses encrypted mode without a key, malformed keys and duplicate ids, without echoing key material", () => {
    expect(vaultError(() => credentialVault({ mode: "encrypted", keys: [] })).code).toBe("VAULT_NO_KEY");
    const short = `k:${randomBytes(16).toString("base64")}`;
    for (const bad of ["nocolon", ":" + randomBytes(32).toString("base64"), "bad id:" + randomBytes(32).toString("base64"), short, "k:not base64!!"]) {
      const err = vaultError(() => parseVaultKey(bad));
      expect(err.code).toBe("VAULT_KEY_INVALID");
      expect(err.message).not.toContain(bad.slice(bad.indexOf(":") + 1) || "\u0000");
    }
    expect(vaultError(() => credentialVault({ mode: "encrypted", keys: [K1, K1] })).message).toContain("twice");
  });

  it("accepts URL-safe base64", () => {
    const raw = randomBytes(32);
    expect(parseVaultKey(`u:${raw.toString("base64url")}`).key.equals(raw)).toBe(true);
  });
});

describe("resolveCredentialKeys", () => {
  const withDir = (fn: (dir: string) => void) => {
    const dir = mkdtempSync(join(tmpdir(), "portcullis-vault-"));
    try {
      fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("generates one key into the data dir in the local profile and reuses it", () => {
    withDir((dir) => {
      const { config } = loadConfig({ env: {}, cwd: dir });
      const first = resolveCredentialKeys(config);
      expect(first.source).toBe(join(config.dataDir, CREDENTIAL_KEY_FILE));
      expect(statSync(first.source).mode & 0o777).toBe(0o600);
      expect(resolveCredentialKeys(config).keys).toEqual(first.keys);
      const sealed = credentialVaultFromConfig(config).seal(SECRETS)!;
      expect(sealed.keyId).toBe("local");
      expect(credentialVaultFromConfig(config).open(sealed.ciphertext, sealed.keyId)).toEqual(SECRETS);
    });
  });

  it("uses configured keys and generates nothing", () => {
    withDir((dir) => {
      const { config } = loadConfig({ env: { PORTCULLIS_SENSORS__CREDENTIAL_KEYS: `${K2},${K1}` }, cwd: dir });
      expect(resolveCredentialKeys(config).keys).toEqual([K2, K1]);
      expect(existsSync(join(config.dataDir, CREDENTIAL_KEY_FILE))).toBe(false);
    });
  });

  it("refuses other profiles in encrypted mode without keys, and needs none when not encrypting", () => {
    withDir((dir) => {
      const { config } = loadConfig({ env: { PORTCULLIS_PROFILE: "staging" }, cwd: dir });
      expect(() => resolveCredentialKeys(config)).toThrow(ConfigError);
      expect(() => resolveCredentialKeys(config)).toThrow(/sensors.credentialKeys is required in the staging profile/);
      const redacted = loadConfig({ env: { PORTCULLIS_PROFILE: "staging", PORTCULLIS_SENSORS__CREDENTIALS: "redacted" }, cwd: dir }).config;
      expect(resolveCredentialKeys(redacted).keys).toEqual([]);
    });
  });
});
