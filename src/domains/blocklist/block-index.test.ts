// The index must never resurrect a lifted block nor lose a new one, whatever order changes arrive in.
import { describe, expect, it } from "vitest";
import { BlockIndex, type IndexedBlock } from "./block-index.ts";

const ip = (id: string, value: string): IndexedBlock => ({ id, type: "ip", value, reason: "", expiresAt: Number.POSITIVE_INFINITY });
const user = (id: string, value: string): IndexedBlock => ({ id, type: "user", value, reason: "", expiresAt: Number.POSITIVE_INFINITY });

describe("BlockIndex", () => {
  it("ignores an upsert that arrives after the block's removal (stale read, reordered notice)", () => {
    const index = new BlockIndex();
    index.upsert(ip("a", "5.188.86.172"));
    index.remove("a");
    index.upsert(ip("a", "5.188.86.172"));
    expect(index.matchIp("5.188.86.172", 0)).toEqual([]);
    index.upsert(user("u", "eve"));
    index.remove("u");
    index.upsert(user("u", "eve"));
    expect(index.matchValue("user", "eve", 0)).toEqual([]);
  });

  it("replays upserts made during a reload on top of the older snapshot, and drops removed ones", () => {
    const index = new BlockIndex();
    index.upsert(ip("old", "45.95.147.10"));
    index.beginReload();
    index.upsert(ip("new", "45.95.147.11"));
    index.remove("old");
    // The snapshot was read before both changes committed.
    index.replaceAll([ip("old", "45.95.147.10")]);
    expect(index.matchIp("45.95.147.11", 0).map((b) => b.id)).toEqual(["new"]);
    expect(index.matchIp("45.95.147.10", 0)).toEqual([]);
  });

  it("keeps the current view when a reload fails", () => {
    const index = new BlockIndex();
    index.upsert(ip("a", "5.188.86.172"));
    index.beginReload();
    index.abortReload();
    expect(index.matchIp("5.188.86.172", 0).map((b) => b.id)).toEqual(["a"]);
  });

  it("agrees with a plain model under random upserts, removes, reloads and folds", () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let run = 0; run < 200; run++) {
      const index = new BlockIndex();
      const live = new Map<string, IndexedBlock>();
      const removed = new Set<string>();
      for (let step = 0; step < 60; step++) {
        const id = `b${rnd(20)}`;
        const block = ip(id, `5.188.${rnd(3)}.${rnd(4)}`);
        const op = rnd(10);
        if (op < 5) {
          index.upsert(block);
          if (!removed.has(id) && !live.has(id)) live.set(id, block);
        } else if (op < 8) {
          index.remove(id);
          live.delete(id);
          removed.add(id);
        } else {
          index.beginReload();
          index.replaceAll([...live.values()]);
        }
      }
      for (let a = 0; a < 3; a++)
        for (let b = 0; b < 4; b++) {
          const addr = `5.188.${a}.${b}`;
          const want = [...live.values()].filter((x) => x.value === addr).map((x) => x.id).sort();
          expect(index.matchIp(addr, 0).map((x) => x.id).sort(), `run ${run} ${addr}`).toEqual(want);
        }
      index.close();
    }
  });
});
