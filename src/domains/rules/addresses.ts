// Address ranges for the rule engine's IP operators. IPv4 is kept as plain numbers (no BigInt on the
// hot path); IPv6 as BigInt. Classes come from the same special-purpose table as the blocklist's
// guardrails (src/lib/ip.ts, derived from ipaddr.js), so a rule and the guardrail never disagree.
import { isV4MappedWords, parseIpv4ToUint32, parseIpv6ToWords, specialRanges } from "../../lib/ip.ts";

export type Addr = { family: 4; first: number; last: number } | { family: 6; first: bigint; last: bigint };

const V4_SPECIAL: { first: number; last: number; cls: string }[] = [];
const V6_SPECIAL: { first: bigint; last: bigint; cls: string }[] = [];
for (const s of specialRanges()) {
  if (s.family === 4) V4_SPECIAL.push({ first: Number(s.first), last: Number(s.last), cls: s.cls });
  else V6_SPECIAL.push({ first: s.first, last: s.last, cls: s.cls });
}

const maskFor = (prefix: number) => (prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffff : (-1 << (32 - prefix)) >>> 0);

const words = new Uint32Array(4);
const PREFIX = /^(0|[1-9]\d{0,2})$/;

const v4Range = (v: number, prefix: number): Addr => {
  const first = (v & maskFor(prefix)) >>> 0;
  return { family: 4, first, last: first + 2 ** (32 - prefix) - 1 };
};

/**
 * The range of an IP or CIDR in any accepted spelling (v4-mapped IPv6 folds to IPv4), or null. Uses
 * the strict parsers of src/lib/ip.ts directly: no canonical text is built on the way.
 */
export const toAddr = (text: string): Addr | null => {
  const slash = text.indexOf("/");
  const host = slash < 0 ? text : text.slice(0, slash);
  let prefix = -1;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!PREFIX.test(p)) return null;
    prefix = Number(p);
  }
  if (host.indexOf(":") < 0) {
    const v = parseIpv4ToUint32(host);
    if (v < 0 || prefix > 32) return null;
    return v4Range(v, prefix < 0 ? 32 : prefix);
  }
  if (host.length > 45 || !parseIpv6ToWords(host, words, 0) || prefix > 128) return null;
  const bits = prefix < 0 ? 128 : prefix;
  if (isV4MappedWords(words) && bits >= 96) return v4Range(words[3]!, bits - 96);
  const value = (BigInt(words[0]!) << 96n) | (BigInt(words[1]!) << 64n) | (BigInt(words[2]!) << 32n) | BigInt(words[3]!);
  const size = 1n << BigInt(128 - bits);
  const first = value - (value % size);
  return { family: 6, first, last: first + size - 1n };
};

export const overlaps = (a: Addr, b: Addr): boolean => a.family === b.family && a.first <= b.last && b.first <= a.last;

const PUBLIC: readonly string[] = Object.freeze(["public"]);

/** Every special class any address of the range is in (no repeats), or ["public"] when it touches none. */
export const classesOf = (a: Addr): readonly string[] => {
  let found: string[] | undefined;
  if (a.family === 4) {
    for (const s of V4_SPECIAL) if (s.first <= a.last && a.first <= s.last && !found?.includes(s.cls)) (found ??= []).push(s.cls);
  } else {
    for (const s of V6_SPECIAL) if (s.first <= a.last && a.first <= s.last && !found?.includes(s.cls)) (found ??= []).push(s.cls);
  }
  return found ?? PUBLIC;
};
