// RFC 9162 §2.1 Merkle tree: hashing, proof generation over a store of complete aligned subtrees, and verification.
// Planning (which nodes) is separate from combining (hashing) so every store operation is ONE batched read.
import { createHash, hash } from "node:crypto";

export const HASH_SIZE = 32;

/** SHA-256 of the empty string: MTH({}) per RFC 9162 §2.1.1. Treat as read-only; APIs hand out copies. */
export const EMPTY_ROOT: Buffer = createHash("sha256").digest();

const LEAF_PREFIX = Buffer.of(0x00);

/** SHA-256(0x00 || data): the 0x00/0x01 prefixes keep leaves and interior nodes from being confused (second preimages). */
export const leafHash = (data: Uint8Array): Buffer => createHash("sha256").update(LEAF_PREFIX).update(data).digest();

// nodeHash is the hot loop of every root computation; one-shot hashing of a reused 65-byte buffer
// is ~1.5x faster than a streaming hash with three updates.
const scratch = Buffer.allocUnsafe(1 + 2 * HASH_SIZE);
scratch[0] = 0x01;

/** SHA-256(0x01 || left || right). */
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer => {
  if (left.length === HASH_SIZE && right.length === HASH_SIZE) {
    scratch.set(left, 1);
    scratch.set(right, 1 + HASH_SIZE);
    return hash("sha256", scratch, "buffer");
  }
  return createHash("sha256").update(scratch.subarray(0, 1)).update(left).update(right).digest();
};

// ---------------------------------------------------------------------------------------------
// Store model: node (level L, index i) = MTH(D[i·2^L : (i+1)·2^L]); it exists once (i+1)·2^L <= size.
// ---------------------------------------------------------------------------------------------

export type NodeKey = { level: number; index: number };
/** Batched store read. Keys whose node is absent may simply be left out of the map; callers then throw. */
export type NodeReader = (keys: readonly NodeKey[]) => Promise<Map<string, Buffer>>;
export type NewNode = { key: NodeKey; hash: Buffer };

export const nodeKeyString = (k: NodeKey): string => `${k.level}:${k.index}`;

const assertCount = (n: number, what: string): void => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${n}`);
};

/** Largest power of two <= n (n >= 1), with its exponent. Float log2 is only a first guess near 2^53. */
const floorPow2 = (n: number): { p: number; level: number } => {
  let level = Math.floor(Math.log2(n));
  let p = 2 ** level;
  while (p > n) {
    p /= 2;
    level--;
  }
  while (p * 2 <= n) {
    p *= 2;
    level++;
  }
  return { p, level };
};

/** RFC 9162's split point k: the largest power of two strictly less than n (n >= 2). */
const splitPoint = (n: number): number => floorPow2(n - 1).p;

/**
 * The aligned complete subtrees tiling leaves [start, end), largest first. Folding their hashes right to left
 * (h0, h1, h2 -> nodeHash(h0, nodeHash(h1, h2))) gives MTH(D[start:end]) because MTH splits off the largest power
 * of two first. Those pieces are aligned store nodes exactly when start is a multiple of the largest power of two
 * <= end - start; every range RFC 9162's PATH/SUBPROOF recursion produces satisfies that (in fact start is a
 * multiple of the smallest power of two >= the length). Other ranges have no store decomposition whose fold is
 * their MTH, so they throw instead of silently yielding a hash of a different tree shape.
 */
export const rangeNodes = (start: number, end: number): NodeKey[] => {
  assertCount(start, "start");
  assertCount(end, "end");
  if (end < start) throw new RangeError(`range [${start}, ${end}) is reversed`);
  if (end === start) return [];
  let { p, level } = floorPow2(end - start);
  if (start % p !== 0) {
    throw new RangeError(`range [${start}, ${end}) is not a subtree range: start must be a multiple of ${p}`);
  }
  const out: NodeKey[] = [];
  let pos = start;
  for (; p >= 1; p /= 2, level--) {
    if (end - pos >= p) {
      out.push({ level, index: pos / p });
      pos += p;
    }
  }
  return out;
};

/** Fold right to left: [a, b, c] -> nodeHash(a, nodeHash(b, c)). */
const foldRight = (hashes: readonly Buffer[]): Buffer => {
  let acc = hashes[hashes.length - 1];
  if (acc === undefined) throw new RangeError("cannot fold an empty range");
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i]!, acc);
  return acc;
};

/** Reads every key of every group in one call (deduplicated), then folds each group; no read when nothing is needed. */
const readAndFold = async (groups: readonly NodeKey[][], read: NodeReader): Promise<Buffer[]> => {
  const wanted = new Map<string, NodeKey>();
  for (const g of groups) for (const k of g) wanted.set(nodeKeyString(k), k);
  if (wanted.size === 0) return [];
  const got = await read([...wanted.values()]);
  const lookup = (k: NodeKey): Buffer => {
    const h = got.get(nodeKeyString(k));
    if (h === undefined) throw new Error(`merkle store returned no hash for node ${nodeKeyString(k)}`);
    if (h.length !== HASH_SIZE) throw new Error(`merkle store returned a ${h.length}-byte hash for node ${nodeKeyString(k)}`);
    return h;
  };
  return groups.map((g) => foldRight(g.map(lookup)));
};

/** MTH(D[0:size]) from the store: the binary decomposition of size, at most log2(size)+1 nodes. */
export const rootAt = async (size: number, read: NodeReader): Promise<Buffer> => {
  assertCount(size, "size");
  if (size === 0) return Buffer.from(EMPTY_ROOT);
  const [root] = await readAndFold([rangeNodes(0, size)], read);
  return root!;
};

/** Proof elements of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), each as the store nodes that fold into it. */
export const inclusionPlan = (index: number, size: number): NodeKey[][] => {
  assertCount(index, "index");
  assertCount(size, "size");
  if (index >= size) throw new RangeError(`index ${index} is not below tree size ${size}`);
  // Walks the recursion top-down; RFC order is bottom-up, hence the final reverse.
  const topDown: NodeKey[][] = [];
  let s = 0;
  let e = size;
  while (e - s > 1) {
    const k = splitPoint(e - s);
    if (index < s + k) {
      topDown.push(rangeNodes(s + k, e));
      e = s + k;
    } else {
      topDown.push(rangeNodes(s, s + k));
      s += k;
    }
  }
  return topDown.reverse();
};

/** Proof elements of PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true) (RFC 9162 §2.1.4.1); empty when m is 0 or n. */
export const consistencyPlan = (m: number, n: number): NodeKey[][] => {
  assertCount(m, "size1");
  assertCount(n, "size2");
  if (m > n) throw new RangeError(`size1 ${m} is greater than size2 ${n}`);
  if (m === 0 || m === n) return [];
  const topDown: NodeKey[][] = [];
  let s = 0;
  let e = n;
  let whole = true; // SUBPROOF's b: is [s, e) still the left edge whose MTH the verifier already holds?
  for (;;) {
    if (m === e) {
      if (!whole) topDown.push(rangeNodes(s, e));
      break;
    }
    const k = splitPoint(e - s);
    if (m - s <= k) {
      topDown.push(rangeNodes(s + k, e));
      e = s + k;
    } else {
      topDown.push(rangeNodes(s, s + k));
      s += k;
      whole = false;
    }
  }
  return topDown.reverse();
};

/** Audit path for leaf `index` in the tree of `size` leaves, with one store read. */
export const inclusionProof = async (index: number, size: number, read: NodeReader): Promise<Buffer[]> =>
  readAndFold(inclusionPlan(index, size), read);

/** Consistency proof from size m to size n, with one store read. */
export const consistencyProof = async (m: number, n: number, read: NodeReader): Promise<Buffer[]> =>
  readAndFold(consistencyPlan(m, n), read);

// ---------------------------------------------------------------------------------------------
// Appending
// ---------------------------------------------------------------------------------------------

/**
 * Existing nodes needed to hash every subtree completed by appending `count` leaves to a tree of `size`:
 * the left siblings on the old right edge, i.e. old node (L, floor(size/2^L) - 1) for each level L where bit L of
 * size is set and the parent at level L+1 fits in the new size.
 */
export const appendPlan = (size: number, count = 1): NodeKey[] => {
  assertCount(size, "size");
  assertCount(count, "count");
  const newSize = size + count;
  assertCount(newSize, "size + count");
  const out: NodeKey[] = [];
  for (let level = 0, p = 1; p * 2 <= newSize; level++, p *= 2) {
    const q = Math.floor(size / p);
    if (q % 2 === 1 && (q + 1) * p <= newSize) out.push({ level, index: q - 1 });
  }
  return out;
};

/** Level by level: new nodes at level L are indices [floor(size/2^L), floor(newSize/2^L)); O(count + log size). */
const computeAppend = (size: number, leafHashes: readonly Buffer[], siblings: ReadonlyMap<string, Buffer>): NewNode[] => {
  for (const h of leafHashes) {
    if (h.length !== HASH_SIZE) throw new RangeError(`leaf hash must be ${HASH_SIZE} bytes, got ${h.length}`);
  }
  const newSize = size + leafHashes.length;
  const out: NewNode[] = [];
  let lo = size;
  let cur: Buffer[] = [...leafHashes];
  cur.forEach((h, i) => out.push({ key: { level: 0, index: lo + i }, hash: h }));
  for (let level = 0, p = 1; ; level++, p *= 2) {
    const nlo = Math.floor(size / (p * 2));
    const nhi = Math.floor(newSize / (p * 2));
    if (nhi <= nlo) break;
    const next: Buffer[] = [];
    for (let i = nlo; i < nhi; i++) {
      const li = 2 * i;
      let left: Buffer | undefined;
      if (li >= lo) left = cur[li - lo];
      else {
        const key = nodeKeyString({ level, index: li });
        left = siblings.get(key);
        if (left === undefined) throw new Error(`append needs existing node ${key}, which was not supplied`);
        if (left.length !== HASH_SIZE) throw new Error(`existing node ${key} is ${left.length} bytes`);
      }
      const right = cur[2 * i + 1 - lo];
      if (left === undefined || right === undefined) throw new Error(`internal: missing child of ${level + 1}:${i}`);
      const h = nodeHash(left, right);
      next.push(h);
      out.push({ key: { level: level + 1, index: i }, hash: h });
    }
    lo = nlo;
    cur = next;
  }
  return out;
};

/** Nodes created by appending leaf number `size` (its leaf hash): the leaf node plus every parent it completes. */
export const newNodesOnAppend = (size: number, leafHash: Buffer, siblings: ReadonlyMap<string, Buffer>): NewNode[] => {
  assertCount(size, "size");
  return computeAppend(size, [leafHash], siblings);
};

/** Appends leaf hashes [size, size + k) with at most one read (none when no old node is involved). */
export const appendMany = async (size: number, leafHashes: readonly Buffer[], read: NodeReader): Promise<NewNode[]> => {
  const keys = appendPlan(size, leafHashes.length);
  const siblings = keys.length > 0 ? await read(keys) : new Map<string, Buffer>();
  return computeAppend(size, leafHashes, siblings);
};

// ---------------------------------------------------------------------------------------------
// In-memory roots
// ---------------------------------------------------------------------------------------------

/**
 * Streaming MTH: keeps one hash per set bit of the current size (the perfect subtrees on the right edge), so memory
 * is O(log n) and each push costs amortised O(1) hashes.
 */
export class RootBuilder {
  #stack: Buffer[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(leafHash: Uint8Array): void {
    if (leafHash.length !== HASH_SIZE) throw new RangeError(`leaf hash must be ${HASH_SIZE} bytes, got ${leafHash.length}`);
    this.#size++;
    if (this.#size % 2 === 1) {
      // The leaf waits on the stack: copy it so a caller reusing its buffer cannot change it meanwhile.
      this.#stack.push(Buffer.from(leafHash));
      return;
    }
    let h = nodeHash(this.#stack.pop()!, leafHash);
    for (let c = this.#size / 2; c % 2 === 0; c /= 2) h = nodeHash(this.#stack.pop()!, h);
    this.#stack.push(h);
  }

  root(): Buffer {
    return this.#stack.length === 0 ? Buffer.from(EMPTY_ROOT) : foldRight(this.#stack);
  }
}

/** MTH of a list of leaf hashes, O(n) time and O(log n) extra memory. */
export const rootFromLeafHashes = (hashes: readonly Uint8Array[]): Buffer => {
  const b = new RootBuilder();
  for (const h of hashes) b.push(h);
  return b.root();
};

/** A NodeReader over a fully materialised in-memory tree, for tests and small offline tools. */
export const memoryTree = (
  leafHashes: readonly Buffer[],
): { read: NodeReader; size: number; nodes: Map<string, Buffer> } => {
  const nodes = new Map<string, Buffer>();
  let level: Buffer[] = leafHashes.map((h, i) => {
    if (h.length !== HASH_SIZE) throw new RangeError(`leaf hash ${i} must be ${HASH_SIZE} bytes`);
    nodes.set(nodeKeyString({ level: 0, index: i }), h);
    return h;
  });
  for (let L = 1; level.length >= 2; L++) {
    const next: Buffer[] = [];
    for (let i = 0; 2 * i + 1 < level.length; i++) {
      const h = nodeHash(level[2 * i]!, level[2 * i + 1]!);
      next.push(h);
      nodes.set(nodeKeyString({ level: L, index: i }), h);
    }
    level = next;
  }
  const read: NodeReader = async (keys) => {
    const out = new Map<string, Buffer>();
    for (const k of keys) {
      const s = nodeKeyString(k);
      const h = nodes.get(s);
      if (h !== undefined) out.set(s, h);
    }
    return out;
  };
  return { read, size: leafHashes.length, nodes };
};

// ---------------------------------------------------------------------------------------------
// Verification (auditor side): pure, synchronous, never throws; malformed input is simply "not verified".
// ---------------------------------------------------------------------------------------------

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
const isHash = (b: unknown): b is Uint8Array => b instanceof Uint8Array && b.length === HASH_SIZE;
const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
const odd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);
const isPow2 = (n: number): boolean => n >= 1 && floorPow2(n).p === n;

/** RFC 9162 §2.1.3.2. */
export const verifyInclusion = (
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean => {
  try {
    if (!isCount(index) || !isCount(size) || index >= size) return false;
    if (!isHash(leafHash) || !isHash(root) || !Array.isArray(proof) || !proof.every(isHash)) return false;
    let fn = index;
    let sn = size - 1;
    let r: Uint8Array = leafHash;
    for (const p of proof) {
      if (sn === 0) return false;
      if (odd(fn) || fn === sn) {
        r = nodeHash(p, r);
        if (!odd(fn)) {
          do {
            fn = half(fn);
            sn = half(sn);
          } while (!odd(fn) && fn !== 0);
        }
      } else {
        r = nodeHash(r, p);
      }
      fn = half(fn);
      sn = half(sn);
    }
    return sn === 0 && bytesEqual(r, root);
  } catch {
    return false;
  }
};

/**
 * RFC 9162 §2.1.4.2, which defines proofs only for 0 < size1 < size2. Equal non-zero sizes are consistent exactly
 * when the roots are byte-equal and the proof is empty; size1 == 0 never verifies (any tree extends the empty one,
 * so a "proof" from it proves nothing — callers should special-case it).
 */
export const verifyConsistency = (
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): boolean => {
  try {
    if (!isCount(size1) || !isCount(size2) || size1 > size2 || size1 === 0) return false;
    if (!(root1 instanceof Uint8Array) || !(root2 instanceof Uint8Array) || !Array.isArray(proof)) return false;
    if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
    if (proof.length === 0 || !isHash(root1) || !isHash(root2) || !proof.every(isHash)) return false;
    // Step 2: when size1 is a power of two its root is itself the first node of the path.
    const path: readonly Uint8Array[] = isPow2(size1) ? [root1, ...proof] : proof;
    let fn = size1 - 1;
    let sn = size2 - 1;
    while (odd(fn)) {
      fn = half(fn);
      sn = half(sn);
    }
    let fr: Uint8Array = path[0]!;
    let sr: Uint8Array = path[0]!;
    for (let i = 1; i < path.length; i++) {
      const c = path[i]!;
      if (sn === 0) return false;
      if (odd(fn) || fn === sn) {
        fr = nodeHash(c, fr);
        sr = nodeHash(c, sr);
        if (!odd(fn)) {
          do {
            fn = half(fn);
            sn = half(sn);
          } while (!odd(fn) && fn !== 0);
        }
      } else {
        sr = nodeHash(sr, c);
      }
      fn = half(fn);
      sn = half(sn);
    }
    return sn === 0 && bytesEqual(fr, root1) && bytesEqual(sr, root2);
  } catch {
    return false;
  }
};
