// What an auditor runs, trusting nothing the server says: recompute every leaf and the root from an
// export, check checkpoint signatures against a key the auditor pins, and prove that today's log
// extends a checkpoint they kept (RFC 9162 consistency), like a Go sumdb or Tessera client.
// Depends only on the pure libraries (merkle, signed-note, jcs), never on server code.
import { createReadStream, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { canonicalize } from "../lib/jcs.ts";
import { leafHash, RootBuilder, verifyConsistency, verifyInclusion } from "../lib/merkle.ts";
import { NoteError, openNote, parseCheckpoint, parseVerifierKey } from "../lib/signed-note.ts";

/** Exit codes of `portcullis audit verify`. */
export const VERIFY_EXIT = { OK: 0, SIGNATURE: 1, INCONSISTENT: 2, MISMATCH: 3, MALFORMED: 4 } as const;

export class VerifyFailure extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

export type VerifiedCheckpoint = { origin: string; size: number; rootHash: Buffer; note: string };
type Verifier = ReturnType<typeof parseVerifierKey>;

export const loadVerifier = (keyOrFile: string): Verifier => {
  const text = existsSync(keyOrFile) ? readFileSync(keyOrFile, "utf8").trim() : keyOrFile.trim();
  try {
    return parseVerifierKey(text);
  } catch (error) {
    throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `not a verifier key (name+keyid+base64): ${(error as Error).message}`);
  }
};

/** Checks a signed checkpoint note; signature problems exit 1, malformed notes exit 4. */
export const verifyCheckpointNote = (note: string, verifier: Verifier): VerifiedCheckpoint => {
  let body: string;
  try {
    body = openNote(note, [verifier]).body;
  } catch (error) {
    if (error instanceof NoteError && error.code === "MALFORMED") throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `checkpoint is malformed: ${error.message}`);
    throw new VerifyFailure(VERIFY_EXIT.SIGNATURE, `checkpoint signature does not verify with key ${verifier.name}: ${(error as Error).message}`);
  }
  try {
    const cp = parseCheckpoint(body);
    if (cp.origin !== verifier.name) throw new VerifyFailure(VERIFY_EXIT.SIGNATURE, `checkpoint origin ${cp.origin} is not the key's name ${verifier.name}`);
    return { origin: cp.origin, size: cp.size, rootHash: cp.rootHash, note };
  } catch (error) {
    if (error instanceof VerifyFailure) throw error;
    throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `checkpoint body is malformed: ${(error as Error).message}`);
  }
};

const LEAF_FIELDS = ["index", "occurred_at", "actor", "action", "target", "request_id", "before", "after", "details"] as const;

/** Recomputes leaf hashes in order and feeds them to `builder`; `expected` is the next index. */
export const checkEntry = (line: string, expected: number): Buffer => {
  try {
    return checkEntryStrict(line, expected);
  } catch (error) {
    if (error instanceof VerifyFailure) throw error;
    // Anything else (numbers JSON cannot round-trip, odd types) means the input is not what we export.
    throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `entry ${expected}: ${(error as Error).message}`);
  }
};

const checkEntryStrict = (line: string, expected: number): Buffer => {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `entry ${expected}: not JSON`);
  }
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `entry ${expected}: not a JSON object`);
  const extra = Object.keys(entry).filter((k) => k !== "leaf" && k !== "leaf_hash" && !(LEAF_FIELDS as readonly string[]).includes(k));
  if (extra.length) throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `entry ${expected}: fields not covered by its leaf: ${extra.join(", ")}`);
  if (typeof entry.leaf !== "string" || typeof entry.leaf_hash !== "string" || typeof entry.index !== "number")
    throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `entry ${expected}: missing index, leaf or leaf_hash`);
  if (entry.index !== expected)
    throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `entry ${expected}: found index ${entry.index} (an entry is missing, duplicated or out of order)`);
  const hash = leafHash(Buffer.from(entry.leaf, "utf8"));
  if (!hash.equals(Buffer.from(entry.leaf_hash, "base64")))
    throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `entry ${expected}: leaf_hash is not the hash of its leaf`);
  // The line itself must be plain JSON.stringify output: no duplicate keys (which JSON.parse resolves
  // last-wins while a person or another parser may read the first), no non-finite numbers, no padding.
  // Fast path for lines written by `audit export`: the leaf's own text with leaf and leaf_hash appended,
  // and the parsed fields re-serialising to the leaf, which proves both at once.
  const { leaf: _leaf, leaf_hash: _leafHash, ...fields } = entry;
  const exportedForm = `${entry.leaf.slice(0, -1)},"leaf":${JSON.stringify(entry.leaf)},"leaf_hash":${JSON.stringify(entry.leaf_hash)}}`;
  if (line === exportedForm && JSON.stringify(fields) === entry.leaf) return hash;
  if (line !== JSON.stringify(entry))
    throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `entry ${expected}: not in plain JSON form (duplicate keys, non-finite numbers or extra whitespace)`);
  // Otherwise the shown fields, canonicalised, must be the leaf byte for byte: that proves at once that
  // the leaf is canonical RFC 8785 JSON, that it holds exactly these fields, and its position.
  const shown = Object.fromEntries(LEAF_FIELDS.map((f) => [f, entry[f]]));
  if (canonicalize(shown) !== entry.leaf)
    throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `entry ${expected}: the entry's fields differ from the leaf it was hashed from, or the leaf is not canonical`);
  return hash;
};

/** Verifies entries (in index order) against a checkpoint: every leaf, then the root. */
export const verifyEntries = async (
  entries: AsyncIterable<string>,
  checkpoint: VerifiedCheckpoint,
  onProgress?: (done: number) => void,
): Promise<number> => {
  const builder = new RootBuilder();
  for await (const line of entries) {
    if (line.trim() === "") continue;
    // Entries beyond the checkpoint are covered by no signature: an export must end at its checkpoint.
    if (builder.size >= checkpoint.size)
      throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `more entries than the checkpoint's ${checkpoint.size}: entries beyond a signed checkpoint cannot be verified`);
    builder.push(checkEntry(line, builder.size));
    if (onProgress && builder.size % 1000 === 0) onProgress(builder.size);
  }
  onProgress?.(builder.size);
  if (builder.size < checkpoint.size)
    throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `only ${builder.size} entries for a checkpoint of size ${checkpoint.size} (the log was truncated)`);
  if (!builder.root().equals(checkpoint.rootHash))
    throw new VerifyFailure(VERIFY_EXIT.MISMATCH, `the root of the ${checkpoint.size} entries does not match the signed checkpoint`);
  return builder.size;
};

/** Lines of a file, read in large chunks (readline costs seconds on a million-line export). */
export async function* fileLines(path: string): AsyncIterable<string> {
  let rest = "";
  for await (const chunk of createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 20 })) {
    const text = rest + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      yield text.charCodeAt(nl - 1) === 13 ? text.slice(start, nl - 1) : text.slice(start, nl);
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  if (rest) yield rest;
}

/** Verifies a directory written by `audit export`. */
export const verifyExportDir = async (dir: string, key: string | undefined, onProgress?: (done: number, total: number) => void) => {
  const need = (name: string) => {
    const path = `${dir}/${name}`;
    if (!existsSync(path)) throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `${path} is missing`);
    return path;
  };
  const verifier = loadVerifier(key ?? need("public-key"));
  const checkpoint = verifyCheckpointNote(readFileSync(need("checkpoint"), "utf8"), verifier);
  const count = await verifyEntries(fileLines(need("entries.ndjson")), checkpoint, onProgress && ((d) => onProgress(d, checkpoint.size)));
  // Without --key the export vouches for itself: whoever wrote it could have re-signed it.
  return { tree_size: count, root_hash: checkpoint.rootHash.toString("base64"), origin: checkpoint.origin, key_pinned: key !== undefined };
};

export type ServerClient = { text(path: string): Promise<string>; json<T>(path: string): Promise<T> };

/** Checks a live server against a checkpoint the auditor kept, then advances the kept checkpoint. */
export const verifyServer = async (
  client: ServerClient,
  trustedFile: string,
  options: { key?: string; full?: boolean; onProgress?: (done: number, total: number) => void },
) => {
  const serverKey = async () => loadVerifier((await client.text("/audit/public-key")).trim());
  const verifier = options.key ? loadVerifier(options.key) : await serverKey();
  const trusted = existsSync(trustedFile) ? verifyCheckpointNote(readFileSync(trustedFile, "utf8"), verifier) : undefined;
  const latest = verifyCheckpointNote(await client.text("/audit/checkpoint"), verifier);
  if (trusted) {
    if (latest.size < trusted.size)
      throw new VerifyFailure(VERIFY_EXIT.INCONSISTENT, `rollback: the server's checkpoint has size ${latest.size}, smaller than the trusted ${trusted.size}`);
    if (latest.size === trusted.size && !latest.rootHash.equals(trusted.rootHash))
      throw new VerifyFailure(VERIFY_EXIT.INCONSISTENT, `fork: two signed checkpoints of size ${latest.size} with different roots`);
    if (latest.size > trusted.size && trusted.size > 0) {
      const { proof } = await client.json<{ proof: string[] }>(`/audit/proof/consistency?from=${trusted.size}&to=${latest.size}`);
      if (!Array.isArray(proof)) throw new VerifyFailure(VERIFY_EXIT.MALFORMED, "consistency proof response has no proof array");
      const nodes = proof.map((p) => Buffer.from(String(p), "base64"));
      if (!verifyConsistency(trusted.size, latest.size, trusted.rootHash, latest.rootHash, nodes))
        throw new VerifyFailure(VERIFY_EXIT.INCONSISTENT, `the log at size ${latest.size} does not extend the trusted checkpoint at size ${trusted.size} (fork or rewritten history)`);
    }
  }
  if (options.full) {
    const lines = async function* () {
      for (let start = 0; start < latest.size; ) {
        const end = Math.min(latest.size, start + 1000);
        const page = await client.json<{ items: { index?: unknown }[] }>(`/audit/entries?start=${start}&end=${end}&limit=1000`);
        if (!Array.isArray(page.items) || page.items.length === 0) return;
        for (const item of page.items) yield JSON.stringify(item);
        // By index, so a missing entry surfaces as a gap instead of being skipped over.
        const last = Number(page.items[page.items.length - 1]!.index);
        if (!Number.isSafeInteger(last) || last < start) throw new VerifyFailure(VERIFY_EXIT.MALFORMED, "entries page without increasing indices");
        start = last + 1;
      }
    };
    await verifyEntries(lines(), latest, options.onProgress && ((d) => options.onProgress!(d, latest.size)));
  }
  const tmp = `${trustedFile}.tmp-${process.pid}`;
  writeFileSync(tmp, latest.note, { mode: 0o644 });
  renameSync(tmp, trustedFile);
  return {
    tree_size: latest.size,
    root_hash: latest.rootHash.toString("base64"),
    previous_size: trusted?.size ?? null,
    first_use: trusted === undefined,
    full: Boolean(options.full),
  };
};

/** One proof in the JSON form of the RFC 9162 test vectors: true if it verifies. */
export const checkProofFile = (text: string): { kind: "inclusion" | "consistency"; verified: boolean } => {
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new VerifyFailure(VERIFY_EXIT.MALFORMED, "not JSON");
  }
  const b64 = (v: unknown) => (typeof v === "string" ? Buffer.from(v, "base64") : Buffer.alloc(0));
  // The test vectors write an empty proof as null.
  const proof = Array.isArray(p.proof) ? p.proof.map(b64) : p.proof === null ? [] : undefined;
  const int = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) ? v : undefined);
  if ("leafIdx" in p) {
    const idx = int(p.leafIdx);
    const size = int(p.treeSize);
    if (idx === undefined || size === undefined || !proof) return { kind: "inclusion", verified: false };
    return { kind: "inclusion", verified: verifyInclusion(b64(p.leafHash), idx, size, proof, b64(p.root)) };
  }
  if ("size1" in p) {
    const s1 = int(p.size1);
    const s2 = int(p.size2);
    if (s1 === undefined || s2 === undefined || !proof) return { kind: "consistency", verified: false };
    return { kind: "consistency", verified: verifyConsistency(s1, s2, b64(p.root1), b64(p.root2), proof) };
  }
  throw new VerifyFailure(VERIFY_EXIT.MALFORMED, "neither an inclusion proof {leafIdx, treeSize, root, leafHash, proof} nor a consistency proof {size1, size2, root1, root2, proof}");
};
