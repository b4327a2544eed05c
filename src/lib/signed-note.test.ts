// C2SP signed notes and checkpoints: the Go sumdb/note known-answer vector, round trips, every rejection path,
// and an independent re-verification that follows the spec by hand with node:crypto.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ed25519RawPublicKey,
  formatCheckpoint,
  generateSigningKey,
  keyId,
  NoteError,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signNote,
  verifierKey,
} from "./signed-note.ts";
import type { NoteErrorCode, NoteVerifier } from "./signed-note.ts";

// golang.org/x/mod/sumdb/note package documentation example (PeterNeumann). Ed25519 is deterministic, so our
// signer must reproduce the Go output byte for byte.
const GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE =
  GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

/** Go signer keys are PRIVATE+KEY+name+id+base64(0x01 || seed); wrap the seed in a PKCS#8 DER header. */
const goPrivateKey = (skey: string): KeyObject => {
  const b64 = skey.split("+").slice(4).join("+");
  const seed = Buffer.from(b64, "base64").subarray(1);
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
};

const newKey = (): KeyObject => createPrivateKey(generateSigningKey().privateKeyPem);
const verifierFor = (name: string, priv: KeyObject): NoteVerifier => parseVerifierKey(verifierKey(name, ed25519RawPublicKey(priv)));

const expectNoteError = (fn: () => unknown, code: NoteErrorCode): void => {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected NoteError ${code}`).toBeInstanceOf(NoteError);
  expect((caught as NoteError).code).toBe(code);
};

describe("Go sumdb/note compatibility", () => {
  it("derives the published verifier key and key ID from the published signer key", () => {
    const priv = goPrivateKey(GO_SKEY);
    const pub = ed25519RawPublicKey(priv);
    expect(verifierKey("PeterNeumann", pub)).toBe(GO_VKEY);
    // Key ID by hand: SHA-256("PeterNeumann" || "\n" || 0x01 || pubkey)[:4].
    const hand = createHash("sha256")
      .update(Buffer.concat([Buffer.from("PeterNeumann\n", "utf8"), Buffer.of(0x01), pub]))
      .digest()
      .subarray(0, 4);
    expect(hand.toString("hex")).toBe("c74f20a3");
    expect(keyId("PeterNeumann", pub).equals(hand)).toBe(true);
  });

  it("signs exactly like Go and opens Go's note", () => {
    expect(signNote(GO_TEXT, "PeterNeumann", goPrivateKey(GO_SKEY))).toBe(GO_NOTE);
    const v = parseVerifierKey(GO_VKEY);
    expect(v.name).toBe("PeterNeumann");
    expect(v.keyId.toString("hex")).toBe("c74f20a3");
    expect(openNote(GO_NOTE, [v])).toEqual({ body: GO_TEXT, verifiedBy: ["PeterNeumann"] });
    expect(openNote(Buffer.from(GO_NOTE, "utf8"), [v]).body).toBe(GO_TEXT);
    expectNoteError(() => openNote(GO_NOTE.replace("cryptography", "cryptographY"), [v]), "BAD_SIGNATURE");
  });

  it("rejects every truncation and every single-byte change of the verifier key (as Go's TestNewVerifier)", () => {
    const b = Buffer.from(GO_VKEY, "utf8");
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expectNoteError(() => parseVerifierKey(b.subarray(i, j).toString("utf8")), "MALFORMED");
      }
    }
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i]! += 1;
      expectNoteError(() => parseVerifierKey(c.toString("utf8")), "MALFORMED");
    }
  });
});

describe("signNote / openNote", () => {
  const name = "audit.portcullis.example/log";
  const priv = newKey();
  const v = verifierFor(name, priv);
  const body = formatCheckpoint({ origin: name, size: 42, rootHash: createHash("sha256").update("root").digest() });
  const note = signNote(body, name, priv);

  it("round trips a checkpoint", () => {
    expect(note.startsWith(`${body}\n\u2014 ${name} `)).toBe(true);
    expect(note.endsWith("\n")).toBe(true);
    const opened = openNote(note, [v]);
    expect(opened).toEqual({ body, verifiedBy: [name] });
    const cp = parseCheckpoint(opened.body);
    expect(cp).toEqual({ origin: name, size: 42, rootHash: createHash("sha256").update("root").digest(), extensions: [] });
  });

  it("verifies independently, following the spec with plain node:crypto", () => {
    // Split at the last blank line; the signed message is the body including its final newline.
    const split = note.lastIndexOf("\n\n");
    const signed = note.slice(0, split + 1);
    const [line] = note.slice(split + 2).split("\n");
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line!);
    expect(m).not.toBeNull();
    const blob = Buffer.from(m![2]!, "base64");
    expect(blob).toHaveLength(4 + 64);
    const raw = ed25519RawPublicKey(priv);
    const id = createHash("sha256").update(`${m![1]}\n`).update(Buffer.of(1)).update(raw).digest().subarray(0, 4);
    expect(blob.subarray(0, 4).equals(id)).toBe(true);
    const pub = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
    expect(verify(null, Buffer.from(signed, "utf8"), pub, blob.subarray(4))).toBe(true);
    expect(verify(null, Buffer.from(signed.replace("42", "43"), "utf8"), pub, blob.subarray(4))).toBe(false);
  });

  it("keeps body blank lines and multi-byte text, splitting at the LAST blank line", () => {
    const text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera — Quasimodo.\n";
    const signed = signNote(text, name, priv);
    expect(openNote(signed, [v]).body).toBe(text);
    expect(openNote(signNote("\n", name, priv), [v]).body).toBe("\n");
  });

  it("tampered body or signature is BAD_SIGNATURE", () => {
    expectNoteError(() => openNote(note.replace("\n42\n", "\n43\n"), [v]), "BAD_SIGNATURE");
    const split = note.lastIndexOf("\n\n");
    const line = note.slice(split + 2, -1);
    const b64 = line.slice(line.lastIndexOf(" ") + 1);
    const blob = Buffer.from(b64, "base64");
    for (const byte of [4, 20, 40, 67]) {
      const bad = Buffer.from(blob);
      bad[byte]! ^= 0x01;
      expectNoteError(() => openNote(note.replace(b64, bad.toString("base64")), [v]), "BAD_SIGNATURE");
    }
    // A truncated signature from a known key fails verification rather than passing silently.
    expectNoteError(() => openNote(note.replace(b64, blob.subarray(0, 40).toString("base64")), [v]), "BAD_SIGNATURE");
  });

  it("unknown or wrong keys are UNVERIFIED; their signatures are ignored next to a trusted one", () => {
    const other = newKey();
    expectNoteError(() => openNote(note, [verifierFor(name, other)]), "UNVERIFIED"); // same name, other key
    expectNoteError(() => openNote(note, [verifierFor("someone.else/log", priv)]), "UNVERIFIED"); // same key, other name
    expectNoteError(() => openNote(note, []), "UNVERIFIED");
    // Flipping a key-ID bit makes the signature "from an unknown key".
    const split = note.lastIndexOf("\n\n");
    const b64 = note.slice(note.lastIndexOf(" ") + 1, -1);
    const blob = Buffer.from(b64, "base64");
    blob[0]! ^= 0x80;
    expectNoteError(() => openNote(note.slice(0, split + 2) + `\u2014 ${name} ${blob.toString("base64")}\n`, [v]), "UNVERIFIED");

    const witness = newKey();
    const wv = verifierFor("witness.example/w1", witness);
    const cosig = signNote(body, "witness.example/w1", witness).slice(body.length + 1);
    const both = note + cosig;
    expect(openNote(both, [v]).verifiedBy).toEqual([name]);
    expect(openNote(both, [wv]).verifiedBy).toEqual(["witness.example/w1"]);
    expect(openNote(both, [v, wv]).verifiedBy).toEqual([name, "witness.example/w1"]);
    // Duplicate identical lines count once.
    expect(openNote(note + note.slice(split + 2), [v]).verifiedBy).toEqual([name]);
    // A bad signature from any trusted key rejects the note even when another trusted key signed it.
    const badCosig = signNote("something else\n", "witness.example/w1", witness).slice("something else\n".length + 1);
    expectNoteError(() => openNote(note + badCosig, [v, wv]), "BAD_SIGNATURE");
    expect(openNote(note + badCosig, [v]).verifiedBy).toEqual([name]); // untrusted: ignored
  });

  it("malformed notes are MALFORMED", () => {
    const split = note.lastIndexOf("\n\n");
    const head = note.slice(0, split + 2);
    const sigLine = note.slice(split + 2, -1); // without its newline
    const sig = sigLine.slice(sigLine.lastIndexOf(" ") + 1);
    const bad: Array<[string, string]> = [
      ["missing em dash", head + sigLine.replace("\u2014 ", "") + "\n"],
      ["hyphen instead of em dash", head + sigLine.replace("\u2014", "-") + "\n"],
      ["en dash instead of em dash", head + sigLine.replace("\u2014", "\u2013") + "\n"],
      ["two hyphens", head + sigLine.replace("\u2014", "--") + "\n"],
      ["no space after em dash", head + sigLine.replace("\u2014 ", "\u2014") + "\n"],
      ["two spaces after em dash", head + sigLine.replace("\u2014 ", "\u2014  ") + "\n"],
      ["two spaces before signature", head + sigLine.replace(` ${sig}`, `  ${sig}`) + "\n"],
      ["tab before signature", head + sigLine.replace(` ${sig}`, `\t${sig}`) + "\n"],
      ["trailing space", head + sigLine + " \n"],
      ["leading space", head + " " + sigLine + "\n"],
      ["CRLF line endings", note.replace(/\n/g, "\r\n")],
      ["carriage return in body", "a\rb\n" + note.slice(body.length)],
      ["NUL in body", "a\u0000b\n" + note.slice(body.length)],
      ["lone surrogate in body", "a\ud800\n" + note.slice(body.length)],
      ["no trailing newline", note.slice(0, -1)],
      ["no signature lines", body + "\n"],
      ["no blank line", body + sigLine + "\n"],
      ["blank line at the end", note + "\n"],
      ["name without signature", head + `\u2014 ${sigLine.split(" ")[1]}\n`],
      ["empty name", head + `\u2014  ${sig}\n`],
      ["name with plus", head + sigLine.replace(" audit.", " audit+") + "\n"],
      ["signature not base64", head + sigLine.replace(sig, "***") + "\n"],
      ["signature unpadded", head + sigLine.replace(sig, sig.replace(/=+$/, "")) + "\n"],
      ["signature with non-canonical padding bits", head + sigLine.replace(sig, sig.slice(0, -2) + "B=") + "\n"],
      ["signature too short", head + sigLine.replace(sig, "AAAAAA==") + "\n"],
      ["too many signatures", head + `${sigLine}\n`.repeat(101)],
      ["empty note", ""],
    ];
    for (const [what, text] of bad) {
      let caught: unknown;
      try {
        openNote(text, [v]);
      } catch (e) {
        caught = e;
      }
      expect(caught, what).toBeInstanceOf(NoteError);
      expect((caught as NoteError).code, what).toBe("MALFORMED");
    }
    // A blank line between signature lines moves the split: the first signature becomes part of the signed text.
    expectNoteError(() => openNote(note + "\n" + sigLine + "\n", [v]), "BAD_SIGNATURE");
    // Invalid UTF-8 bytes are malformed, not silently replaced with U+FFFD.
    expectNoteError(() => openNote(Buffer.concat([Buffer.from([0xff]), Buffer.from(note)]), [v]), "MALFORMED");
    // 100 signature lines are still accepted.
    expect(openNote(head + `${sigLine}\n`.repeat(100), [v]).verifiedBy).toEqual([name]);
  });

  it("refuses to sign what it could not open, and misconfigured verifiers", () => {
    expect(() => signNote("no newline", name, priv)).toThrow(TypeError);
    expect(() => signNote("a\r\n", name, priv)).toThrow(TypeError);
    expect(() => signNote("x\n", "bad name", priv)).toThrow(TypeError);
    expect(() => signNote("x\n", "bad+name", priv)).toThrow(TypeError);
    expect(() => signNote("x\n", "", priv)).toThrow(TypeError);
    expect(() => signNote("x\n", name, createPublicKey(priv))).toThrow(TypeError);
    expect(() => signNote("x\n", name, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey)).toThrow(TypeError);
    const wrongId: NoteVerifier = { ...v, keyId: Buffer.from("00000000", "hex") };
    expect(() => openNote(note, [wrongId])).toThrow(TypeError);
  });
});

describe("verifier keys", () => {
  it("round trip", () => {
    const priv = newKey();
    const raw = ed25519RawPublicKey(priv);
    const vkey = verifierKey("example.com/log+ish".replace("+", "-"), raw);
    const v = parseVerifierKey(vkey);
    expect(v.name).toBe("example.com/log-ish");
    expect(v.keyId.equals(keyId("example.com/log-ish", raw))).toBe(true);
    expect(ed25519RawPublicKey(v.publicKey).equals(raw)).toBe(true);
    expect(verifierKey(v.name, ed25519RawPublicKey(v.publicKey))).toBe(vkey);
  });

  it("accepts a key whose base64 contains '+' (transparency-dev/formats test key)", () => {
    expect(parseVerifierKey("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").name).toBe("TEST");
  });

  it("rejects anything but name+8-hex-id+base64(0x01 || 32-byte key)", () => {
    const raw = ed25519RawPublicKey(newKey());
    const good = verifierKey("log.example", raw);
    const [n, id, key] = [good.split("+")[0]!, good.split("+")[1]!, good.split("+").slice(2).join("+")];
    const typed = (type: number, k: Buffer): string => Buffer.concat([Buffer.of(type), k]).toString("base64");
    const bad = [
      "",
      "log.example",
      `${n}+${id}`,
      `${n}+${id}+`,
      `+${id}+${key}`,
      `log example+${id}+${key}`,
      `log\u00a0example+${id}+${key}`,
      // Upper-case hex (forced to contain a letter: a random id may be all digits).
      `${n}+${/[a-f]/.test(id) ? id.toUpperCase() : `A${id.slice(1)}`}+${key}`,
      `${n}+${id.slice(1)}+${key}`,
      `${n}+0${id}+${key}`,
      `${n}+${id}+${key} `,
      ` ${good}`,
      `${good}\n`,
      `${n}+${id}+${key.slice(0, -1)}`,
      `${n}+${id}+${typed(0x02, raw)}`,
      `${n}+${id}+${typed(0x01, raw.subarray(1))}`,
      `${n}+${id}+${typed(0x01, Buffer.concat([raw, Buffer.of(0)]))}`,
      `other+${id}+${key}`,
    ];
    for (const k of bad) expectNoteError(() => parseVerifierKey(k), "MALFORMED");
    expectNoteError(() => parseVerifierKey(undefined as unknown as string), "MALFORMED");
  });

  it("rejects small-order and non-canonical keys, with which node:crypto accepts forged signatures", () => {
    const smallOrder = [
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    const forged = Buffer.alloc(64);
    forged[0] = 1; // R = identity, s = 0
    for (const hex of smallOrder) {
      for (const signBit of [0, 0x80]) {
        const raw = Buffer.from(hex, "hex");
        raw[31]! |= signBit;
        // Show the danger: some of 64 messages verify under the forged signature.
        const pub = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
        const forgeries = Array.from({ length: 64 }, (_, i) => verify(null, Buffer.from(`m${i}`), pub, forged)).filter(Boolean);
        expect(forgeries.length, hex).toBeGreaterThan(0);
        const vkey = `evil+${keyId("evil", raw).toString("hex")}+${Buffer.concat([Buffer.of(1), raw]).toString("base64")}`;
        expectNoteError(() => parseVerifierKey(vkey), "MALFORMED");
      }
    }
    // y = p and y = p + 1 (non-canonical encodings of 0 and 1), and the largest non-canonical y.
    for (const low of [0xed, 0xee, 0xff]) {
      const raw = Buffer.alloc(32, 0xff);
      raw[0] = low;
      raw[31] = 0x7f;
      const vkey = `evil+${keyId("evil", raw).toString("hex")}+${Buffer.concat([Buffer.of(1), raw]).toString("base64")}`;
      expectNoteError(() => parseVerifierKey(vkey), "MALFORMED");
    }
  });
});

describe("checkpoints", () => {
  const root = createHash("sha256").update("x").digest();

  it("format and parse round trip, with extension lines", () => {
    const body = formatCheckpoint({ origin: "example.com/log42", size: 0, rootHash: root, extensions: ["ext one", "— two"] });
    expect(body).toBe(`example.com/log42\n0\n${root.toString("base64")}\next one\n— two\n`);
    expect(parseCheckpoint(body)).toEqual({ origin: "example.com/log42", size: 0, rootHash: root, extensions: ["ext one", "— two"] });
    const max = formatCheckpoint({ origin: "o", size: Number.MAX_SAFE_INTEGER, rootHash: root });
    expect(parseCheckpoint(max).size).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("parses the tlog-checkpoint spec example", () => {
    const cp = parseCheckpoint("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
    expect(cp.origin).toBe("example.com/behind-the-sofa");
    expect(cp.size).toBe(20852163);
    expect(cp.rootHash.toString("base64")).toBe("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=");
    // The spec's signed example is well formed; its key is not ours, so it is merely unverified.
    const note =
      "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n" +
      "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    expectNoteError(() => openNote(note, [parseVerifierKey(GO_VKEY)]), "UNVERIFIED");
  });

  it("is strict", () => {
    const r = root.toString("base64");
    const bad = [
      `o\n01\n${r}\n`,
      `o\n+1\n${r}\n`,
      `o\n-1\n${r}\n`,
      `o\n 1\n${r}\n`,
      `o\n1 \n${r}\n`,
      `o\n1.0\n${r}\n`,
      `o\n1e3\n${r}\n`,
      `o\n0x10\n${r}\n`,
      `o\n\n${r}\n`,
      `o\n9007199254740992\n${r}\n`,
      `o\n18446744073709551615\n${r}\n`,
      `\n1\n${r}\n`,
      `o\n1\n${r}`,
      `o\n1\n`,
      `o\n1\n${r}\n\n`,
      `o\n1\n${r}\n\next\n`,
      `o\n1\n${r.slice(0, -1)}\n`,
      `o\n1\n${r.replace(/=$/, "")}\n`,
      `o\n1\n${root.subarray(1).toString("base64")}\n`,
      `o\n1\n${Buffer.concat([root, Buffer.of(0)]).toString("base64")}\n`,
      `o\n1\n${r.slice(0, -2)}B=\n`,
      `o\r\n1\n${r}\n`,
      `o\n1\n${r}\n`.replace(/\n/g, "\r\n"),
    ];
    for (const b of bad) expectNoteError(() => parseCheckpoint(b), "MALFORMED");
  });

  it("refuses to format what it would not parse", () => {
    expect(() => formatCheckpoint({ origin: "", size: 1, rootHash: root })).toThrow(TypeError);
    expect(() => formatCheckpoint({ origin: "a\nb", size: 1, rootHash: root })).toThrow(TypeError);
    expect(() => formatCheckpoint({ origin: "o", size: -1, rootHash: root })).toThrow(TypeError);
    expect(() => formatCheckpoint({ origin: "o", size: 1.5, rootHash: root })).toThrow(TypeError);
    expect(() => formatCheckpoint({ origin: "o", size: 2 ** 53, rootHash: root })).toThrow(TypeError);
    expect(() => formatCheckpoint({ origin: "o", size: 1, rootHash: root.subarray(1) })).toThrow(TypeError);
    expect(() => formatCheckpoint({ origin: "o", size: 1, rootHash: root, extensions: [""] })).toThrow(TypeError);
    expect(() => formatCheckpoint({ origin: "o", size: 1, rootHash: root, extensions: ["a\nb"] })).toThrow(TypeError);
  });
});

describe("keys", () => {
  it("ed25519RawPublicKey agrees with the SPKI DER tail for public and private keys", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const spki = publicKey.export({ type: "spki", format: "der" });
    expect(spki).toHaveLength(44);
    expect(ed25519RawPublicKey(publicKey).equals(spki.subarray(12))).toBe(true);
    expect(ed25519RawPublicKey(privateKey).equals(spki.subarray(12))).toBe(true);
    expect(() => ed25519RawPublicKey(generateKeyPairSync("ed448").publicKey)).toThrow(TypeError);
  });

  it("generateSigningKey yields a PKCS#8 PEM Ed25519 key that signs and verifies", () => {
    const { privateKeyPem } = generateSigningKey();
    expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const priv = createPrivateKey(privateKeyPem);
    expect(priv.asymmetricKeyType).toBe("ed25519");
    const sig = sign(null, Buffer.from("m"), priv);
    expect(verify(null, Buffer.from("m"), createPublicKey(priv), sig)).toBe(true);
    expect(generateSigningKey().privateKeyPem).not.toBe(privateKeyPem);
  });
});
