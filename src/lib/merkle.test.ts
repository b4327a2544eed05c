// RFC 9162 Merkle tree: published vectors, a brute-force reference of the RFC's recursive definitions,
// seeded property tests, the one-read-per-operation contract, and the append path against a materialised tree.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import {
  appendMany,
  appendPlan,
  consistencyPlan,
  consistencyProof,
  EMPTY_ROOT,
  inclusionPlan,
  inclusionProof,
  leafHash,
  memoryTree,
  newNodesOnAppend,
  nodeHash,
  nodeKeyString,
  rangeNodes,
  RootBuilder,
  rootAt,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from "./merkle.ts";
import type { NodeKey, NodeReader } from "./merkle.ts";
import { mulberry32 } from "./prng.ts";

const FIXTURES = "/work/shared/fixtures/rfc9162";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const walk = (dir: string): string[] =>
  readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
const b64 = (s: string): Buffer => Buffer.from(s, "base64");

/** Seeded, so sizes and indices reproduce. */
const prng = (seed: number) => {
  const next = mulberry32(seed);
  return { next, int: (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1)) };
};

const makeLeaves = (n: number, seed = 1): Buffer[] =>
  Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${seed}/${i}`)));

const flipBit = (b: Uint8Array, bit: number): Buffer => {
  const c = Buffer.from(b);
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
};

/** Wraps a reader to count calls and reject keys for nodes that cannot exist in a tree of `size`. */
const spy = (read: NodeReader, size: number) => {
  const calls: NodeKey[][] = [];
  const wrapped: NodeReader = async (keys) => {
    calls.push([...keys]);
    for (const k of keys) {
      if ((k.index + 1) * 2 ** k.level > size) throw new Error(`asked for ${nodeKeyString(k)} outside tree of ${size}`);
    }
    return read(keys);
  };
  return { read: wrapped, calls };
};

const ceilLog2 = (n: number): number => (n <= 1 ? 0 : Math.ceil(Math.log2(n)));
const keyBudget = (n: number): number => 2 * ceilLog2(n) + 2;

// Brute-force RFC 9162 §2.1 definitions over arrays, used as the oracle.
const split = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
const mthRef = (d: readonly Buffer[]): Buffer => {
  if (d.length === 0) return Buffer.from(EMPTY_ROOT);
  if (d.length === 1) return d[0]!;
  const k = split(d.length);
  return nodeHash(mthRef(d.slice(0, k)), mthRef(d.slice(k)));
};
/** PATH and SUBPROOF, also reporting every [start, end) whose MTH they take (the ranges rangeNodes must serve). */
const pathRef = (m: number, d: readonly Buffer[], off = 0, ranges: Array<[number, number]> = []): Buffer[] => {
  const n = d.length;
  if (n === 1) return [];
  const k = split(n);
  if (m < k) {
    ranges.push([off + k, off + n]);
    return [...pathRef(m, d.slice(0, k), off, ranges), mthRef(d.slice(k))];
  }
  ranges.push([off, off + k]);
  return [...pathRef(m - k, d.slice(k), off + k, ranges), mthRef(d.slice(0, k))];
};
const subproofRef = (
  m: number,
  d: readonly Buffer[],
  b: boolean,
  off = 0,
  ranges: Array<[number, number]> = [],
): Buffer[] => {
  const n = d.length;
  if (m === n) {
    if (b) return [];
    ranges.push([off, off + n]);
    return [mthRef(d)];
  }
  const k = split(n);
  if (m <= k) {
    ranges.push([off + k, off + n]);
    return [...subproofRef(m, d.slice(0, k), b, off, ranges), mthRef(d.slice(k))];
  }
  ranges.push([off, off + k]);
  return [...subproofRef(m - k, d.slice(k), false, off + k, ranges), mthRef(d.slice(0, k))];
};

const hex = (bs: readonly Buffer[]): string[] => bs.map((b) => b.toString("hex"));

// ---------------------------------------------------------------------------------------------
// Published vectors
// ---------------------------------------------------------------------------------------------

type InclusionCase = {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
};
type ConsistencyCase = {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
};

const inclusionFiles = walk(join(FIXTURES, "inclusion"));
const consistencyFiles = walk(join(FIXTURES, "consistency"));
const load = <T>(f: string): T => JSON.parse(readFileSync(f, "utf8")) as T;
const tree8 = load<{ leafInputsHex: string[]; rootHashesHexBySize: string[] }>(join(FIXTURES, "tree-8-leaves.json"));
const leaves8 = tree8.leafInputsHex.map((h) => leafHash(Buffer.from(h, "hex")));

describe("RFC 9162 fixtures (transparency-dev/merkle testdata)", () => {
  it("has the expected number of cases; inclusion/additional/0..3 are git tree listings, not cases", () => {
    const notJson = inclusionFiles.filter((f) => !f.endsWith(".json")).map((f) => relative(FIXTURES, f));
    // The fixture copy captured `git show` output for these directories instead of their JSON files.
    expect(notJson).toEqual(["inclusion/additional/0", "inclusion/additional/1", "inclusion/additional/2", "inclusion/additional/3"]);
    for (const f of notJson) expect(readFileSync(join(FIXTURES, f), "utf8")).toMatch(/^tree HEAD:testdata\/inclusion\/additional\//);
    expect(inclusionFiles.filter((f) => f.endsWith(".json"))).toHaveLength(53);
    expect(consistencyFiles).toHaveLength(57);
  });

  describe.each(inclusionFiles.filter((f) => f.endsWith(".json")).map((f) => [relative(FIXTURES, f), f]))(
    "inclusion %s",
    (_name, file) => {
      it("gives exactly wantErr", () => {
        const c = load<InclusionCase>(file);
        const ok = verifyInclusion(b64(c.leafHash), c.leafIdx, c.treeSize, (c.proof ?? []).map(b64), b64(c.root));
        expect(ok).toBe(!c.wantErr);
      });
    },
  );

  describe.each(consistencyFiles.map((f) => [relative(FIXTURES, f), f]))("consistency %s", (_name, file) => {
    it("gives exactly wantErr", () => {
      const c = load<ConsistencyCase>(file);
      const ok = verifyConsistency(c.size1, c.size2, b64(c.root1), b64(c.root2), (c.proof ?? []).map(b64));
      expect(ok).toBe(!c.wantErr);
    });
  });

  it("rejects the upstream inclusion/additional cases the fixture copy lost (index beyond an empty tree)", () => {
    const random = Buffer.from("q6yroAAAAAAAAAAAAAAAAAAAAAAAAAAAAGAGHgASNFY=", "base64");
    for (let idx = 0; idx <= 3; idx++) {
      expect(verifyInclusion(random, idx, 0, [], Buffer.alloc(0))).toBe(false);
      expect(verifyInclusion(random, idx, 0, [], EMPTY_ROOT)).toBe(false);
      expect(verifyInclusion(EMPTY_ROOT, idx, 0, [], EMPTY_ROOT)).toBe(false);
    }
  });

  it("reproduces every happy-path proof whose tree is a prefix of the 8-leaf tree", async () => {
    let reproduced = 0;
    for (const f of inclusionFiles.filter((x) => x.endsWith("happy-path.json"))) {
      const c = load<InclusionCase>(f);
      if (c.treeSize > 8 || b64(c.root).toString("hex") !== tree8.rootHashesHexBySize[c.treeSize]) continue;
      const t = memoryTree(leaves8.slice(0, c.treeSize));
      expect(hex(await inclusionProof(c.leafIdx, c.treeSize, t.read))).toEqual(hex((c.proof ?? []).map(b64)));
      reproduced++;
    }
    for (const f of consistencyFiles.filter((x) => x.endsWith("happy-path.json"))) {
      const c = load<ConsistencyCase>(f);
      if (c.size2 > 8 || b64(c.root2).toString("hex") !== tree8.rootHashesHexBySize[c.size2]) continue;
      const t = memoryTree(leaves8.slice(0, c.size2));
      expect(hex(await consistencyProof(c.size1, c.size2, t.read))).toEqual(hex((c.proof ?? []).map(b64)));
      reproduced++;
    }
    expect(reproduced).toBeGreaterThanOrEqual(4);
  });

  it("computes the 8-leaf tree roots for sizes 0..8 three ways", async () => {
    expect(EMPTY_ROOT.toString("hex")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const builder = new RootBuilder();
    expect(builder.root().toString("hex")).toBe(tree8.rootHashesHexBySize[0]);
    for (let size = 0; size <= 8; size++) {
      const want = tree8.rootHashesHexBySize[size];
      if (size > 0) builder.push(leaves8[size - 1]!);
      expect(builder.size).toBe(size);
      expect(builder.root().toString("hex")).toBe(want);
      expect(rootFromLeafHashes(leaves8.slice(0, size)).toString("hex")).toBe(want);
      const t = memoryTree(leaves8.slice(0, size));
      expect((await rootAt(size, t.read)).toString("hex")).toBe(want);
      expect(mthRef(leaves8.slice(0, size)).toString("hex")).toBe(want);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// rangeNodes
// ---------------------------------------------------------------------------------------------

describe("rangeNodes", () => {
  const leaves = makeLeaves(48, 7);
  const t = memoryTree(leaves);
  const fold = (keys: NodeKey[]): Buffer => {
    const hs = keys.map((k) => t.nodes.get(nodeKeyString(k))!);
    let acc = hs[hs.length - 1]!;
    for (let i = hs.length - 2; i >= 0; i--) acc = nodeHash(hs[i]!, acc);
    return acc;
  };

  it("tiles ranges largest first", () => {
    expect(rangeNodes(0, 7)).toEqual([
      { level: 2, index: 0 },
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ]);
    expect(rangeNodes(8, 13)).toEqual([
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(rangeNodes(16, 32)).toEqual([{ level: 4, index: 1 }]);
    expect(rangeNodes(5, 5)).toEqual([]);
  });

  it("folds to MTH(D[start:end]) exactly when start is a multiple of the largest power of two <= length", () => {
    let accepted = 0;
    let rejected = 0;
    for (let s = 0; s <= leaves.length; s++) {
      for (let e = s + 1; e <= leaves.length; e++) {
        let top = 1;
        while (top * 2 <= e - s) top *= 2;
        if (s % top === 0) {
          const keys = rangeNodes(s, e);
          expect(keys.reduce((n, k) => n + 2 ** k.level, 0)).toBe(e - s);
          expect(fold(keys).equals(mthRef(leaves.slice(s, e)))).toBe(true);
          accepted++;
        } else {
          expect(() => rangeNodes(s, e)).toThrow(RangeError);
          rejected++;
        }
      }
    }
    expect(accepted).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });

  it("serves every range the PATH and SUBPROOF recursions take an MTH of; only suffixes [x, n) are non-perfect", () => {
    for (let n = 1; n <= leaves.length; n++) {
      const d = leaves.slice(0, n);
      const ranges: Array<[number, number]> = [];
      for (let m = 0; m < n; m++) pathRef(m, d, 0, ranges);
      for (let m = 1; m < n; m++) subproofRef(m, d, true, 0, ranges);
      for (const [s, e] of ranges) {
        const len = e - s;
        const perfect = (len & (len - 1)) === 0;
        if (!perfect) expect(e).toBe(n);
        // Stronger than needed: start is aligned to the next power of two >= length.
        expect(s % 2 ** ceilLog2(len)).toBe(0);
        expect(fold(rangeNodes(s, e)).equals(mthRef(d.slice(s, e)))).toBe(true);
      }
    }
  });

  it("rejects bad arguments", () => {
    expect(() => rangeNodes(3, 2)).toThrow(RangeError);
    expect(() => rangeNodes(-1, 2)).toThrow(RangeError);
    expect(() => rangeNodes(0.5, 2)).toThrow(RangeError);
    expect(() => rangeNodes(1, 3)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Proof generation against the reference, exhaustively for small trees
// ---------------------------------------------------------------------------------------------

describe("proof generation matches RFC 9162 PATH/PROOF", () => {
  const leaves = makeLeaves(70, 3);

  it("for every index and size pair up to 70 leaves, with one read each", async () => {
    for (let n = 1; n <= leaves.length; n++) {
      const d = leaves.slice(0, n);
      const t = memoryTree(d);
      const root = mthRef(d);
      const r = spy(t.read, n);
      expect((await rootAt(n, r.read)).equals(root)).toBe(true);
      for (let i = 0; i < n; i++) {
        const before = r.calls.length;
        const proof = await inclusionProof(i, n, r.read);
        expect(hex(proof)).toEqual(hex(pathRef(i, d)));
        // At most one element is not a single stored node: the right-edge suffix where the path first turns left.
        expect(inclusionPlan(i, n).filter((g) => g.length > 1).length).toBeLessThanOrEqual(1);
        expect(verifyInclusion(d[i]!, i, n, proof, root)).toBe(true);
        expect(r.calls.length - before).toBe(proof.length > 0 ? 1 : 0);
      }
      for (let m = 1; m <= n; m++) {
        const before = r.calls.length;
        const proof = await consistencyProof(m, n, r.read);
        expect(hex(proof)).toEqual(hex(m === n ? [] : subproofRef(m, d, true)));
        expect(consistencyPlan(m, n).filter((g) => g.length > 1).length).toBeLessThanOrEqual(1);
        expect(verifyConsistency(m, n, mthRef(leaves.slice(0, m)), root, proof)).toBe(true);
        expect(r.calls.length - before).toBe(proof.length > 0 ? 1 : 0);
      }
      for (const keys of r.calls) expect(keys.length).toBeLessThanOrEqual(keyBudget(n));
    }
  });

  it("consistency from 0 and to the same size are empty and need no read", async () => {
    const t = memoryTree(leaves.slice(0, 10));
    const r = spy(t.read, 10);
    expect(await consistencyProof(0, 10, r.read)).toEqual([]);
    expect(await consistencyProof(10, 10, r.read)).toEqual([]);
    expect(await consistencyProof(0, 0, r.read)).toEqual([]);
    expect((await rootAt(0, r.read)).equals(EMPTY_ROOT)).toBe(true);
    expect(r.calls).toHaveLength(0);
  });

  it("rejects impossible requests and a store that lacks a node", async () => {
    const t = memoryTree(leaves.slice(0, 10));
    await expect(inclusionProof(10, 10, t.read)).rejects.toThrow(RangeError);
    await expect(inclusionProof(0, 0, t.read)).rejects.toThrow(RangeError);
    await expect(consistencyProof(11, 10, t.read)).rejects.toThrow(RangeError);
    await expect(rootAt(-1, t.read)).rejects.toThrow(RangeError);
    const empty: NodeReader = async () => new Map();
    await expect(rootAt(10, empty)).rejects.toThrow(/no hash for node/);
    const short: NodeReader = async (keys) => new Map(keys.map((k) => [nodeKeyString(k), Buffer.alloc(31)]));
    await expect(inclusionProof(3, 10, short)).rejects.toThrow(/31-byte/);
  });
});

// ---------------------------------------------------------------------------------------------
// Seeded property tests on larger trees
// ---------------------------------------------------------------------------------------------

describe("properties on random trees up to 2000 leaves (seeded)", () => {
  const rnd = prng(0x9162);
  const sizes = [1, 2, 3, 1023, 1024, 1025, 2000, ...Array.from({ length: 25 }, () => rnd.int(1, 2000))];
  const all = makeLeaves(2000, 11);
  const roots = new Map<number, Buffer>();
  const rootOf = (n: number): Buffer => {
    let r = roots.get(n);
    if (!r) roots.set(n, (r = rootFromLeafHashes(all.slice(0, n))));
    return r;
  };

  it("inclusion proofs verify, and any bit flip, wrong index, wrong size or reshaped proof fails", async () => {
    for (const n of sizes) {
      const t = memoryTree(all.slice(0, n));
      const root = rootOf(n);
      for (let trial = 0; trial < 4; trial++) {
        const i = trial === 0 ? n - 1 : rnd.int(0, n - 1);
        const r = spy(t.read, n);
        const proof = await inclusionProof(i, n, r.read);
        expect(r.calls.length).toBe(n > 1 ? 1 : 0);
        if (n > 1) expect(r.calls[0]!.length).toBeLessThanOrEqual(keyBudget(n));
        const leaf = all[i]!;
        expect(verifyInclusion(leaf, i, n, proof, root)).toBe(true);

        for (let bit = rnd.int(0, 7); bit < 256; bit += 8) {
          expect(verifyInclusion(flipBit(leaf, bit), i, n, proof, root)).toBe(false);
          expect(verifyInclusion(leaf, i, n, proof, flipBit(root, bit))).toBe(false);
        }
        proof.forEach((p, k) => {
          for (let bit = rnd.int(0, 15); bit < 256; bit += 16) {
            const bad = proof.map((q, j) => (j === k ? flipBit(q, bit) : q));
            expect(verifyInclusion(leaf, i, n, bad, root)).toBe(false);
          }
          void p;
        });
        for (const j of [i - 1, i + 1, rnd.int(0, n - 1)]) {
          if (j !== i && j >= 0) expect(verifyInclusion(leaf, j, n, proof, root)).toBe(false);
        }
        // A size must come with its own root (a checkpoint signs them together).
        for (const m of [n - 1, n + 1, 2 * n, i + 1, rnd.int(1, 2000)]) {
          if (m !== n && m > i && m <= 2000) expect(verifyInclusion(leaf, i, m, proof, rootOf(m))).toBe(false);
        }
        expect(verifyInclusion(leaf, i, n, [...proof, root], root)).toBe(false);
        if (proof.length > 0) {
          expect(verifyInclusion(leaf, i, n, proof.slice(1), root)).toBe(false);
          expect(verifyInclusion(leaf, i, n, proof.slice(0, -1), root)).toBe(false);
          expect(verifyInclusion(leaf, i, n, [proof[0]!.subarray(1), ...proof.slice(1)], root)).toBe(false);
        }
      }
    }
  });

  it("consistency proofs verify, and any bit flip, wrong size or reshaped proof fails", async () => {
    for (const n of sizes) {
      if (n < 2) continue;
      const t = memoryTree(all.slice(0, n));
      const root2 = rootOf(n);
      for (let trial = 0; trial < 4; trial++) {
        const m = trial === 0 ? 2 ** Math.floor(Math.log2(n - 1)) : rnd.int(1, n - 1);
        const root1 = rootOf(m);
        const r = spy(t.read, n);
        const proof = await consistencyProof(m, n, r.read);
        expect(r.calls.length).toBe(1);
        expect(r.calls[0]!.length).toBeLessThanOrEqual(keyBudget(n));
        expect(verifyConsistency(m, n, root1, root2, proof)).toBe(true);

        for (let bit = rnd.int(0, 7); bit < 256; bit += 8) {
          expect(verifyConsistency(m, n, flipBit(root1, bit), root2, proof)).toBe(false);
          expect(verifyConsistency(m, n, root1, flipBit(root2, bit), proof)).toBe(false);
        }
        proof.forEach((_p, k) => {
          for (let bit = rnd.int(0, 15); bit < 256; bit += 16) {
            const bad = proof.map((q, j) => (j === k ? flipBit(q, bit) : q));
            expect(verifyConsistency(m, n, root1, root2, bad)).toBe(false);
          }
        });
        for (const [m2, n2] of [
          [m - 1, n],
          [m + 1, n],
          [m, n - 1],
          [m, n + 1],
          [rnd.int(1, n), n],
        ] as const) {
          if ((m2 !== m || n2 !== n) && m2 >= 1 && m2 <= n2 && n2 <= 2000) {
            expect(verifyConsistency(m2, n2, rootOf(m2), rootOf(n2), proof)).toBe(false);
          }
        }
        expect(verifyConsistency(m, n, root2, root1, proof)).toBe(false);
        expect(verifyConsistency(m, n, root1, root2, [...proof, root2])).toBe(false);
        expect(verifyConsistency(m, n, root1, root2, [root1, ...proof])).toBe(false);
        expect(verifyConsistency(m, n, root1, root2, proof.slice(0, -1))).toBe(false);
        expect(verifyConsistency(m, n, root1, root2, proof.slice(1))).toBe(false);
        expect(verifyConsistency(m, n, root1, root2, [])).toBe(false);
      }
    }
  });

  it("verification never throws on malformed input", () => {
    const h = all[0]!;
    const junk: unknown[] = [undefined, null, -1, 1.5, NaN, Infinity, 2 ** 60, "3", {}, [], Buffer.alloc(0), Buffer.alloc(33)];
    for (const x of junk) {
      const a = x as never;
      expect(verifyInclusion(a, 0, 1, [], h)).toBe(false);
      expect(verifyInclusion(h, a, 1, [], h)).toBe(false);
      expect(verifyInclusion(h, 0, a, [], h)).toBe(false);
      if (!Array.isArray(x)) expect(verifyInclusion(h, 0, 1, a, h)).toBe(false); // [] is the valid proof here
      expect(verifyInclusion(h, 0, 1, [a], h)).toBe(false);
      expect(verifyInclusion(h, 0, 1, [], a)).toBe(false);
      expect(verifyConsistency(a, 2, h, h, [h])).toBe(false);
      expect(verifyConsistency(1, a, h, h, [h])).toBe(false);
      expect(verifyConsistency(1, 2, a, h, [h])).toBe(false);
      expect(verifyConsistency(1, 2, h, a, [h])).toBe(false);
      expect(verifyConsistency(1, 2, h, h, a)).toBe(false);
      expect(verifyConsistency(1, 2, h, h, [a])).toBe(false);
    }
    expect(verifyInclusion(h, 0, 1, [], h)).toBe(true);
    expect(verifyInclusion(h, 0, 1, Array.from({ length: 100 }, () => h), h)).toBe(false);
    expect(verifyConsistency(1, 2, h, h, Array.from({ length: 100 }, () => h))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Sizes near 2^53: the planners must not use 32-bit bit operations
// ---------------------------------------------------------------------------------------------

describe("huge trees (uniform leaves, so node (L, i) hashes to U[L] for every i)", () => {
  // With identical leaves every complete subtree of height L has the same hash, so a reader that answers
  // U[level] is a consistent store of any size; that exercises the arithmetic end to end without 2^53 leaves.
  const U: Buffer[] = [leafHash(Buffer.from("same"))];
  for (let L = 1; L <= 53; L++) U.push(nodeHash(U[L - 1]!, U[L - 1]!));
  const uniformReader = (size: number) =>
    spy(async (keys) => new Map(keys.map((k) => [nodeKeyString(k), U[k.level]!])), size);
  const rootRef = (size: number): Buffer => {
    // Right-to-left fold over the binary decomposition of size.
    const parts: Buffer[] = [];
    for (let L = 53; L >= 0; L--) if (Math.floor(size / 2 ** L) % 2 === 1) parts.push(U[L]!);
    let acc = parts[parts.length - 1]!;
    for (let i = parts.length - 2; i >= 0; i--) acc = nodeHash(parts[i]!, acc);
    return acc;
  };
  const MAX = Number.MAX_SAFE_INTEGER;

  it("rootAt, inclusion and consistency agree with verification", async () => {
    const rnd = prng(53);
    const sizes = [MAX, 2 ** 53 - 2, 2 ** 52, 2 ** 52 + 1, 2 ** 32 + 1, 2 ** 31 + 7, ...Array.from({ length: 20 }, () => rnd.int(2, MAX))];
    for (const n of sizes) {
      const r = uniformReader(n);
      const root = await rootAt(n, r.read);
      expect(root.equals(rootRef(n))).toBe(true);
      for (const i of [0, n - 1, Math.floor(n / 2), rnd.int(0, n - 1), 2 ** 32 % n]) {
        const proof = await inclusionProof(i, n, r.read);
        expect(verifyInclusion(U[0]!, i, n, proof, root)).toBe(true);
      }
      for (const m of [1, n - 1, 2 ** 32 % n || 1, rnd.int(1, n - 1)]) {
        const proof = await consistencyProof(m, n, r.read);
        expect(verifyConsistency(m, n, rootRef(m), root, proof)).toBe(true);
      }
      for (const keys of r.calls) expect(keys.length).toBeLessThanOrEqual(keyBudget(n));
    }
  });

  it("plans stay within the tree and the key budget", () => {
    expect(inclusionPlan(MAX - 1, MAX).flat().length).toBeLessThanOrEqual(keyBudget(MAX));
    expect(consistencyPlan(MAX - 2, MAX).flat().length).toBeLessThanOrEqual(keyBudget(MAX));
    expect(appendPlan(MAX - 1)).toEqual([]); // leaf 2^53 - 2 is a left child: it completes nothing
    expect(appendPlan(2 ** 52 - 1)).toHaveLength(52); // ...while leaf 2^52 - 1 completes a subtree at every level
    expect(appendPlan(2 ** 52 - 1).at(-1)).toEqual({ level: 51, index: 0 });
    expect(() => appendPlan(MAX)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Appending
// ---------------------------------------------------------------------------------------------

describe("appending", () => {
  const leaves = makeLeaves(1100, 5);

  it("appendPlan + newNodesOnAppend, one leaf at a time, build exactly memoryTree's node set", () => {
    const store = new Map<string, Buffer>();
    for (let size = 0; size < 600; size++) {
      const plan = appendPlan(size);
      // Needs exactly one left sibling per trailing one bit of size.
      let trailing = 0;
      for (let s = size; s % 2 === 1; s = (s - 1) / 2) trailing++;
      expect(plan).toHaveLength(trailing);
      const siblings = new Map<string, Buffer>();
      for (const k of plan) {
        const h = store.get(nodeKeyString(k));
        expect(h, `plan for ${size} wants missing ${nodeKeyString(k)}`).toBeDefined();
        siblings.set(nodeKeyString(k), h!);
      }
      const created = newNodesOnAppend(size, leaves[size]!, siblings);
      expect(created).toHaveLength(trailing + 1);
      for (const { key, hash } of created) {
        expect(store.has(nodeKeyString(key))).toBe(false);
        store.set(nodeKeyString(key), hash);
      }
      if (size % 97 === 0) {
        const t = memoryTree(leaves.slice(0, size + 1));
        expect(new Map([...store].map(([k, v]) => [k, v.toString("hex")]))).toEqual(
          new Map([...t.nodes].map(([k, v]) => [k, v.toString("hex")])),
        );
      }
    }
    const t = memoryTree(leaves.slice(0, 600));
    expect(store.size).toBe(t.nodes.size);
    for (const [k, v] of t.nodes) expect(store.get(k)?.equals(v), k).toBe(true);
    expect(() => newNodesOnAppend(1, leaves[1]!, new Map())).toThrow(/0:0/);
  });

  it("appendMany in random batches reads at most once per batch and builds the same node set", async () => {
    const rnd = prng(77);
    const store = new Map<string, Buffer>();
    let size = 0;
    while (size < leaves.length) {
      const k = Math.min(leaves.length - size, rnd.int(1, 70));
      const r = spy(async (keys) => new Map(keys.flatMap((key) => {
        const h = store.get(nodeKeyString(key));
        return h ? [[nodeKeyString(key), h] as const] : [];
      })), size);
      const created = await appendMany(size, leaves.slice(size, size + k), r.read);
      const plan = appendPlan(size, k);
      expect(r.calls).toHaveLength(plan.length > 0 ? 1 : 0);
      expect(plan.length).toBeLessThanOrEqual(ceilLog2(size + k) + 1);
      for (const { key, hash } of created) {
        expect(store.has(nodeKeyString(key))).toBe(false);
        store.set(nodeKeyString(key), hash);
      }
      size += k;
      const tree = memoryTree(leaves.slice(0, size));
      expect(await rootAt(size, async (keys) => new Map(keys.map((x) => [nodeKeyString(x), store.get(nodeKeyString(x))!])))).toEqual(
        await rootAt(size, tree.read),
      );
    }
    const t = memoryTree(leaves);
    expect(store.size).toBe(t.nodes.size);
    for (const [k, v] of t.nodes) expect(store.get(k)?.equals(v), k).toBe(true);
  });

  it("appendMany from empty equals memoryTree, and an empty batch creates nothing", async () => {
    const noRead: NodeReader = async () => {
      throw new Error("should not read");
    };
    const created = await appendMany(0, leaves.slice(0, 333), noRead);
    const t = memoryTree(leaves.slice(0, 333));
    expect(new Map(created.map((c) => [nodeKeyString(c.key), c.hash.toString("hex")]))).toEqual(
      new Map([...t.nodes].map(([k, v]) => [k, v.toString("hex")])),
    );
    expect(await appendMany(5, [], noRead)).toEqual([]);
    await expect(appendMany(0, [Buffer.alloc(31)], noRead)).rejects.toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// In-memory roots
// ---------------------------------------------------------------------------------------------

describe("rootFromLeafHashes / RootBuilder", () => {
  it("match the reference for every size up to 130", () => {
    const leaves = makeLeaves(130, 9);
    const b = new RootBuilder();
    for (let n = 1; n <= leaves.length; n++) {
      b.push(leaves[n - 1]!);
      const want = mthRef(leaves.slice(0, n));
      expect(b.root().equals(want)).toBe(true);
      expect(rootFromLeafHashes(leaves.slice(0, n)).equals(want)).toBe(true);
    }
  });

  it("copies pushed leaves and rejects non-32-byte ones", () => {
    const leaf = Buffer.from(leafHash(Buffer.from("x")));
    const b = new RootBuilder();
    b.push(leaf);
    const before = b.root();
    leaf.fill(0);
    expect(b.root().equals(before)).toBe(true);
    expect(() => b.push(Buffer.alloc(31))).toThrow(RangeError);
    expect(() => rootFromLeafHashes([Buffer.alloc(0)])).toThrow(RangeError);
    // Returned roots are copies, not the shared constant.
    const r = new RootBuilder().root();
    r.fill(1);
    expect(EMPTY_ROOT.toString("hex")).toMatch(/^e3b0c442/);
  });

  // Speed is the bench's job (npm run bench, audit rows), not a timed assertion that fails on a busy machine.
  it("builds the root of a large power-of-two tree like a level-by-level reduction", () => {
    const hs = Array.from({ length: 1 << 17 }, (_, i) => {
      const x = Buffer.alloc(32);
      x.writeUInt32BE(i);
      return x;
    });
    const root = rootFromLeafHashes(hs);
    // The power-of-two tree root equals a level-by-level reduction.
    let level: Buffer[] = hs;
    while (level.length > 1) level = Array.from({ length: level.length / 2 }, (_, i) => nodeHash(level[2 * i]!, level[2 * i + 1]!));
    expect(root.equals(level[0]!)).toBe(true);
  });
});
