// C2SP signed notes (c2sp.org/signed-note) with Ed25519 and tlog-checkpoint bodies (c2sp.org/tlog-checkpoint),
// byte-compatible with golang.org/x/mod/sumdb/note so witnesses and other C2SP tooling can check our checkpoints.
import { createHash, createPublicKey, generateKeyPairSync, KeyObject, sign, verify } from "node:crypto";

export type NoteErrorCode = "MALFORMED" | "UNVERIFIED" | "BAD_SIGNATURE";

/** Raised for untrusted input: a malformed note/key/checkpoint, no trusted signature, or a failing trusted one. */
export class NoteError extends Error {
  constructor(
    readonly code: NoteErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "NoteError";
  }
}

export type NoteVerifier = { name: string; keyId: Buffer; publicKey: KeyObject };
export type Checkpoint = { origin: string; size: number; rootHash: Buffer; extensions: string[] };

const ED25519_TYPE = 0x01;
const SIG_PREFIX = "\u2014 "; // em dash, space
// The spec requires accepting at least 16; 100 matches the Go implementation and bounds the work per note.
const MAX_SIGNATURES = 100;
const LONE_SURROGATE = /\p{Cs}/u;
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f]/;
// "Unicode spaces" as Go's unicode.IsSpace sees them: JS \s lacks U+0085 (and adds U+FEFF, harmless to forbid).
const NAME_FORBIDDEN = /[\s\u0085+\u0000-\u001f]/u;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const malformed = (msg: string): NoteError => new NoteError("MALFORMED", msg);

const isValidName = (name: string): boolean =>
  typeof name === "string" && name.length > 0 && !NAME_FORBIDDEN.test(name) && !LONE_SURROGATE.test(name);

/** Standard base64 with padding, canonical only (re-encodes to the same text), as every C2SP encoder emits it. */
const decodeBase64 = (s: string): Buffer | undefined => {
  if (!BASE64.test(s)) return undefined;
  const b = Buffer.from(s, "base64");
  return b.toString("base64") === s ? b : undefined;
};

// Ed25519 public keys that make forgery trivial (OpenSSL accepts them: with the identity key, R = identity and
// s = 0 verify for every message). Small-order encodings with the sign bit masked, as in libsodium's blocklist.
const SMALL_ORDER_HEX = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/** Rejects small-order and non-canonical (y >= 2^255 - 19) encodings; plain byte comparisons, no curve math. */
const checkPublicKeyBytes = (raw: Buffer): string | undefined => {
  if (raw.length !== 32) return `Ed25519 public key must be 32 bytes, got ${raw.length}`;
  const masked = Buffer.from(raw);
  masked[31]! &= 0x7f;
  if (SMALL_ORDER_HEX.includes(masked.toString("hex"))) return "Ed25519 public key has small order";
  // y >= p  <=>  top byte 0x7f, bytes 30..1 all 0xff, low byte >= 0xed (little-endian).
  if (masked[31] === 0x7f && masked.subarray(1, 31).every((b) => b === 0xff) && masked[0]! >= 0xed) {
    return "Ed25519 public key is not canonically encoded";
  }
  return undefined;
};

const publicKeyFromRaw = (raw: Buffer): KeyObject =>
  createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });

/** The 32-byte RFC 8032 encoding of an Ed25519 key (public, or the public half of a private key). */
export const ed25519RawPublicKey = (key: KeyObject): Buffer => {
  if (!(key instanceof KeyObject) || key.asymmetricKeyType !== "ed25519") throw new TypeError("expected an Ed25519 KeyObject");
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const { x } = pub.export({ format: "jwk" });
  const raw = Buffer.from(x ?? "", "base64url");
  if (raw.length !== 32) throw new TypeError("Ed25519 key did not export a 32-byte public key");
  return raw;
};

/** Fresh Ed25519 signing key as PKCS#8 PEM. */
export const generateSigningKey = (): { privateKeyPem: string } => {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
};

/** SHA-256(name || 0x0A || 0x01 || pubkey)[:4], the spec's recommended (and Go's) Ed25519 key ID. */
export const keyId = (name: string, publicKeyRaw32: Buffer): Buffer => {
  if (!isValidName(name)) throw new TypeError(`invalid key name ${JSON.stringify(name)}`);
  if (publicKeyRaw32.length !== 32) throw new TypeError("Ed25519 public key must be 32 bytes");
  return createHash("sha256")
    .update(name, "utf8")
    .update(Buffer.of(0x0a, ED25519_TYPE))
    .update(publicKeyRaw32)
    .digest()
    .subarray(0, 4);
};

/** `<name>+<hex key ID>+<base64(0x01 || pubkey)>`, the verifier key format of the Go note package. */
export const verifierKey = (name: string, publicKeyRaw32: Buffer): string =>
  `${name}+${keyId(name, publicKeyRaw32).toString("hex")}+${Buffer.concat([Buffer.of(ED25519_TYPE), publicKeyRaw32]).toString("base64")}`;

/** Strict inverse of verifierKey; throws NoteError("MALFORMED") for anything else (including small-order keys). */
export const parseVerifierKey = (vkey: string): NoteVerifier => {
  if (typeof vkey !== "string") throw malformed("verifier key must be a string");
  // The name cannot contain '+', the hex ID cannot either, but the base64 key may: split on the first two only.
  const p1 = vkey.indexOf("+");
  const p2 = p1 < 0 ? -1 : vkey.indexOf("+", p1 + 1);
  if (p2 < 0) throw malformed("verifier key must be name+keyid+key");
  const name = vkey.slice(0, p1);
  const idHex = vkey.slice(p1 + 1, p2);
  if (!isValidName(name)) throw malformed(`invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw malformed("key ID must be 8 lowercase hex digits");
  const key = decodeBase64(vkey.slice(p2 + 1));
  if (key === undefined) throw malformed("verifier key material is not canonical base64");
  if (key[0] !== ED25519_TYPE) throw malformed(`unsupported signature type ${key[0]}`);
  const raw = key.subarray(1);
  const bad = checkPublicKeyBytes(raw);
  if (bad) throw malformed(bad);
  const id = keyId(name, raw);
  if (id.toString("hex") !== idHex) throw malformed("key ID does not match the name and key");
  return { name, keyId: id, publicKey: publicKeyFromRaw(raw) };
};

const textProblem = (text: string): string | undefined => {
  if (CONTROL_BUT_NEWLINE.test(text)) return "contains a control character other than newline";
  if (LONE_SURROGATE.test(text)) return "is not valid Unicode";
  return undefined;
};
const checkText = (text: string, what: string): void => {
  const problem = textProblem(text);
  if (problem) throw malformed(`${what} ${problem}`);
};

/**
 * body + blank line + one Ed25519 signature line. Bad arguments are the caller's bug, so they throw TypeError;
 * NoteError is kept for untrusted input.
 */
export const signNote = (body: string, name: string, privateKey: KeyObject): string => {
  if (typeof body !== "string" || !body.endsWith("\n")) throw new TypeError("note body must end with a newline");
  const problem = textProblem(body);
  if (problem) throw new TypeError(`note body ${problem}`);
  if (!isValidName(name)) throw new TypeError(`invalid key name ${JSON.stringify(name)}`);
  if (!(privateKey instanceof KeyObject) || privateKey.type !== "private" || privateKey.asymmetricKeyType !== "ed25519") {
    throw new TypeError("signNote needs an Ed25519 private KeyObject");
  }
  const sig = sign(null, Buffer.from(body, "utf8"), privateKey);
  const id = keyId(name, ed25519RawPublicKey(privateKey));
  return `${body}\n${SIG_PREFIX}${name} ${Buffer.concat([id, sig]).toString("base64")}\n`;
};

const checkVerifiers = (verifiers: readonly NoteVerifier[]): void => {
  const seen = new Map<string, KeyObject>();
  for (const v of verifiers) {
    const raw = ed25519RawPublicKey(v.publicKey);
    const bad = checkPublicKeyBytes(raw);
    if (bad) throw new TypeError(`verifier ${v.name}: ${bad}`);
    if (!Buffer.isBuffer(v.keyId) || !keyId(v.name, raw).equals(v.keyId)) {
      throw new TypeError(`verifier ${v.name}: keyId does not match its name and public key`);
    }
    const tuple = `${v.name} ${v.keyId.toString("hex")}`;
    const prior = seen.get(tuple);
    if (prior && !prior.equals(v.publicKey)) throw new TypeError(`verifiers ${tuple} are ambiguous`);
    seen.set(tuple, v.publicKey);
  }
};

/**
 * Parses a signed note and checks its signatures against the trusted verifiers. Signatures from unknown
 * (name, key ID) pairs are ignored, as the spec requires; a failing signature from a known key rejects the note.
 */
export const openNote = (note: string | Uint8Array, verifiers: readonly NoteVerifier[]): { body: string; verifiedBy: string[] } => {
  checkVerifiers(verifiers);
  let text: string;
  if (typeof note === "string") text = note;
  else if (note instanceof Uint8Array) {
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(note);
    } catch {
      throw malformed("note is not valid UTF-8");
    }
  } else throw malformed("note must be a string or bytes");
  checkText(text, "note");

  // The last blank line separates the body (which keeps its final newline) from the signature block.
  const split = text.lastIndexOf("\n\n");
  if (split < 0) throw malformed("note has no blank line before its signatures");
  const body = text.slice(0, split + 1);
  const block = text.slice(split + 2);
  if (block.length === 0 || !block.endsWith("\n")) throw malformed("note has no signature lines ending in a newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw malformed(`note has more than ${MAX_SIGNATURES} signatures`);

  const bodyBytes = Buffer.from(body, "utf8");
  const verifiedBy: string[] = [];
  const checked = new Set<string>();
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) throw malformed("signature line does not start with an em dash and a space");
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0) throw malformed("signature line has no signature");
    const name = rest.slice(0, space);
    const sig = decodeBase64(rest.slice(space + 1));
    if (!isValidName(name)) throw malformed(`invalid key name ${JSON.stringify(name)} in signature line`);
    if (sig === undefined || sig.length < 5) throw malformed("signature is not base64 of a key ID and a signature");
    const id = sig.subarray(0, 4);
    const v = verifiers.find((x) => x.name === name && x.keyId.equals(id));
    if (!v) continue;
    const tuple = `${name} ${id.toString("hex")}`;
    if (checked.has(tuple)) continue;
    checked.add(tuple);
    if (!verify(null, bodyBytes, v.publicKey, sig.subarray(4))) {
      throw new NoteError("BAD_SIGNATURE", `signature by ${name} (${id.toString("hex")}) does not verify`);
    }
    verifiedBy.push(name);
  }
  if (verifiedBy.length === 0) throw new NoteError("UNVERIFIED", "note has no signature from a trusted key");
  return { body, verifiedBy };
};

// ---------------------------------------------------------------------------------------------
// tlog-checkpoint bodies
// ---------------------------------------------------------------------------------------------

const checkLine = (line: string, what: string): void => {
  if (typeof line !== "string" || line.length === 0) throw new TypeError(`${what} must be a non-empty string`);
  if (line.includes("\n") || CONTROL_BUT_NEWLINE.test(line) || LONE_SURROGATE.test(line)) {
    throw new TypeError(`${what} must be one line of printable Unicode`);
  }
};

/** `${origin}\n${size}\n${base64(root)}\n` plus extension lines. */
export const formatCheckpoint = (cp: { origin: string; size: number; rootHash: Buffer; extensions?: readonly string[] }): string => {
  checkLine(cp.origin, "checkpoint origin");
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new TypeError("checkpoint size must be a non-negative safe integer");
  if (!Buffer.isBuffer(cp.rootHash) || cp.rootHash.length !== 32) throw new TypeError("checkpoint root hash must be 32 bytes");
  const ext = cp.extensions ?? [];
  ext.forEach((e, i) => checkLine(e, `checkpoint extension line ${i}`));
  return [cp.origin, String(cp.size), cp.rootHash.toString("base64"), ...ext].map((l) => `${l}\n`).join("");
};

/** Strict parse of a checkpoint body (as returned by openNote); throws NoteError("MALFORMED"). */
export const parseCheckpoint = (body: string): Checkpoint => {
  if (typeof body !== "string" || !body.endsWith("\n")) throw malformed("checkpoint must end with a newline");
  checkText(body, "checkpoint");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) throw malformed("checkpoint needs origin, size and root hash lines");
  if (lines.some((l) => l.length === 0)) throw malformed("checkpoint lines must be non-empty");
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText)) throw malformed("tree size must be decimal without leading zeros");
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw malformed("tree size is beyond 2^53 - 1");
  const rootHash = decodeBase64(rootText);
  if (rootHash === undefined || rootHash.length !== 32) throw malformed("root hash must be base64 of 32 bytes");
  return { origin, size, rootHash, extensions };
};
