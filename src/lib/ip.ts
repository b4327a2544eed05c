// IP literal parsing, canonical text forms and special-space classification.
// Every accepted spelling of an address must fold to one canonical string, because stored blocks are compared as text.
import ipaddr from "ipaddr.js";

export type IpFamily = 4 | 6;

export type IpClass = "loopback" | "private" | "link_local" | "reserved" | "multicast" | "unspecified" | "public";

export type SpecialIpClass = Exclude<IpClass, "public">;

export type CidrInfo = { network: string; prefix: number; family: IpFamily; text: string };

/** Inclusive address range; IPv4 and IPv6 are separate spaces (v4-mapped IPv6 is always folded to IPv4 first). */
export type IpRange = { family: IpFamily; first: bigint; last: bigint };

// The longest IPv6 literal we accept is "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"; anything longer is
// rejected before it reaches ipaddr.js's regexes.
const MAX_IPV6_TEXT = 45;

// Module-level scratch so the hot-path parsers never allocate. Safe because they run to completion synchronously.
const groupScratch = new Uint16Array(8);
const wordScratch = new Uint32Array(4);

// Hex digit value by char code, -1 for anything else; a table beats three range tests per character.
const HEX_DIGIT = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX_DIGIT[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX_DIGIT[0x41 + c] = 10 + c;
  HEX_DIGIT[0x61 + c] = 10 + c;
}

/**
 * Strict dotted-decimal IPv4 in text[start, end): exactly four decimal octets 0..255, no leading zeros except "0",
 * nothing else. Returns the address as an unsigned 32-bit number, or -1.
 */
function parseIpv4Span(text: string, start: number, end: number): number {
  const len = end - start;
  if (len < 7 || len > 15) return -1;
  let acc = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      acc = (acc << 8) | octet;
      dots++;
      octet = 0;
      digits = 0;
    } else {
      const d = c - 0x30;
      if (d < 0 || d > 9) return -1;
      // "010" is octal to inet_aton and decimal to others; refusing it removes the ambiguity.
      if (digits === 1 && octet === 0) return -1;
      octet = octet * 10 + d;
      if (octet > 255) return -1;
      digits++;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return ((acc << 8) | octet) >>> 0;
}

/** Hot-path IPv4 parser (no regex, no allocation). Returns the unsigned 32-bit address or -1 if not strict dotted-decimal. */
export function parseIpv4ToUint32(text: string): number {
  return parseIpv4Span(text, 0, text.length);
}

/**
 * Hot-path IPv6 parser (no regex, no allocation): writes the address as four big-endian 32-bit words into
 * out[offset..offset+3]. Accepts RFC 4291 text forms: 1-4 hex digits per group, at most one "::" standing for at
 * least one zero group, and an optional strict dotted-quad as the last 32 bits. Rejects zone ids ("%eth0").
 * Unlike ipaddr.js, "::1.2.3.4" is read per RFC 4291 as ::102:304 (IPv4-compatible), not as ::ffff:1.2.3.4.
 */
export function parseIpv6ToWords(text: string, out: Uint32Array, offset = 0): boolean {
  const n = text.length;
  if (n < 2 || n > MAX_IPV6_TEXT) return false;
  const g = groupScratch;
  let count = 0;
  let gap = -1;
  let i = 0;
  if (text.charCodeAt(0) === 0x3a) {
    if (text.charCodeAt(1) !== 0x3a) return false;
    gap = 0;
    i = 2;
  }
  if (i < n) {
    for (;;) {
      const pieceStart = i;
      let value = 0;
      while (i < n) {
        const c = text.charCodeAt(i);
        const d = c < 128 ? HEX_DIGIT[c]! : -1;
        if (d < 0) break;
        value = (value << 4) | d;
        i++;
      }
      if (i < n && text.charCodeAt(i) === 0x2e) {
        // An embedded dotted quad supplies the last two groups and must end the literal.
        if (count > 6) return false;
        const v4 = parseIpv4Span(text, pieceStart, n);
        if (v4 < 0) return false;
        g[count++] = v4 >>> 16;
        g[count++] = v4 & 0xffff;
        break;
      }
      const digits = i - pieceStart;
      if (digits === 0 || digits > 4 || count === 8) return false;
      g[count++] = value;
      if (i === n) break;
      if (text.charCodeAt(i) !== 0x3a) return false;
      i++;
      if (i < n && text.charCodeAt(i) === 0x3a) {
        if (gap >= 0) return false;
        gap = count;
        i++;
        if (i === n) break;
      }
    }
  }
  if (gap < 0) {
    if (count !== 8) return false;
  } else {
    if (count > 7) return false;
    const shift = 8 - count;
    for (let k = count - 1; k >= gap; k--) g[k + shift] = g[k]!;
    for (let k = gap; k < gap + shift; k++) g[k] = 0;
  }
  out[offset] = ((g[0]! << 16) | g[1]!) >>> 0;
  out[offset + 1] = ((g[2]! << 16) | g[3]!) >>> 0;
  out[offset + 2] = ((g[4]! << 16) | g[5]!) >>> 0;
  out[offset + 3] = ((g[6]! << 16) | g[7]!) >>> 0;
  return true;
}

/** True when the four words at w[offset..] are an IPv4-mapped address (::ffff:0:0/96). */
export function isV4MappedWords(w: Uint32Array, offset = 0): boolean {
  return w[offset] === 0 && w[offset + 1] === 0 && w[offset + 2] === 0xffff;
}

export function uint32ToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

function wordsToParts(w: Uint32Array): number[] {
  const parts: number[] = [];
  for (let k = 0; k < 4; k++) {
    const word = w[k]!;
    parts.push(word >>> 16, word & 0xffff);
  }
  return parts;
}

function wordsToIpv6Text(w: Uint32Array): string {
  return new ipaddr.IPv6(wordsToParts(w)).toRFC5952String();
}

function wordsToBigInt(w: Uint32Array): bigint {
  return (BigInt(w[0]!) << 96n) | (BigInt(w[1]!) << 64n) | (BigInt(w[2]!) << 32n) | BigInt(w[3]!);
}

function maskForBits(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (-1 << (32 - bits)) >>> 0;
}

type Strict = { family: 4; v4: number } | { family: 6 };

/**
 * Strict validation shared by normalizeIp and normalizeCidr. IPv6 results are left in wordScratch unfolded, since
 * a CIDR only folds to IPv4 when its prefix stays inside ::ffff:0:0/96.
 */
function parseStrict(text: string): Strict | null {
  if (text.length > MAX_IPV6_TEXT) return null;
  if (text.indexOf(":") < 0) {
    // ipaddr.js alone would also take "1", "0x7f.1" and octal octets; the four-part check rules those out and
    // the hand parser must agree, since the matcher uses it on the hot path.
    if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return null;
    const v4 = parseIpv4ToUint32(text);
    return v4 < 0 ? null : { family: 4, v4 };
  }
  if (text.indexOf("%") >= 0 || !ipaddr.IPv6.isValid(text)) return null;
  // The value comes from our parser, not ipaddr.js: ipaddr reads "::1.2.3.4" as ::ffff:1.2.3.4 and accepts
  // hex/octal octets in the dotted tail.
  if (!parseIpv6ToWords(text, wordScratch, 0)) return null;
  return { family: 6 };
}

/**
 * Canonical text of an IP literal, or null if the text is not a plain IP literal. IPv4 is dotted-decimal;
 * IPv6 is RFC 5952; IPv4-mapped IPv6 (dotted or hex tail) folds to IPv4 so one host has one key.
 */
export function normalizeIp(text: string): string | null {
  if (typeof text !== "string") return null;
  const p = parseStrict(text);
  if (p === null) return null;
  if (p.family === 4) return uint32ToIpv4(p.v4);
  if (isV4MappedWords(wordScratch)) return uint32ToIpv4(wordScratch[3]!);
  return wordsToIpv6Text(wordScratch);
}

// Decimal digits only, no sign, no leading zero: "/08" could be read as octal by some tools and "/ 8" as 8 by
// parseInt, and a block list must not guess.
function parsePrefix(text: string): number {
  const n = text.length;
  if (n === 0 || n > 3) return -1;
  if (n > 1 && text.charCodeAt(0) === 0x30) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Canonical CIDR: host bits cleared, IPv4-mapped IPv6 blocks with prefix >= 96 folded to IPv4 (prefix - 96).
 * A bare address without "/" is not a CIDR.
 */
export function normalizeCidr(text: string): CidrInfo | null {
  if (typeof text !== "string") return null;
  const slash = text.indexOf("/");
  if (slash < 0 || slash !== text.lastIndexOf("/")) return null;
  const prefix = parsePrefix(text.slice(slash + 1));
  if (prefix < 0) return null;
  const p = parseStrict(text.slice(0, slash));
  if (p === null) return null;
  if (p.family === 4) {
    if (prefix > 32) return null;
    return v4Cidr((p.v4 & maskForBits(prefix)) >>> 0, prefix);
  }
  if (prefix > 128) return null;
  const w = wordScratch;
  if (prefix >= 96 && isV4MappedWords(w)) {
    const p4 = prefix - 96;
    return v4Cidr((w[3]! & maskForBits(p4)) >>> 0, p4);
  }
  for (let k = 0; k < 4; k++) w[k] = (w[k]! & maskForBits(prefix - 32 * k)) >>> 0;
  const network = wordsToIpv6Text(w);
  return { network, prefix, family: 6, text: `${network}/${prefix}` };
}

function v4Cidr(networkValue: number, prefix: number): CidrInfo {
  const network = uint32ToIpv4(networkValue);
  return { network, prefix, family: 4, text: `${network}/${prefix}` };
}

/** Inclusive numeric range of an IP (a one-address range) or a CIDR, in canonical (folded) family; null if neither. */
export function parseRange(text: string | CidrInfo): IpRange | null {
  const src = typeof text === "string" ? text : text?.text;
  if (typeof src !== "string") return null;
  if (src.indexOf("/") >= 0) {
    const c = normalizeCidr(src);
    return c === null ? null : rangeOf(c.family, c.network, c.prefix);
  }
  const ip = normalizeIp(src);
  if (ip === null) return null;
  return ip.indexOf(":") >= 0 ? rangeOf(6, ip, 128) : rangeOf(4, ip, 32);
}

// `network` is canonical text with host bits already clear.
function rangeOf(family: IpFamily, network: string, prefix: number): IpRange {
  let first: bigint;
  if (family === 4) {
    first = BigInt(parseIpv4ToUint32(network));
  } else {
    parseIpv6ToWords(network, wordScratch, 0);
    first = wordsToBigInt(wordScratch);
  }
  const bits = family === 4 ? 32 : 128;
  return { family, first, last: first + (1n << BigInt(bits - prefix)) - 1n };
}

function requireRange(text: string | CidrInfo, what: string): IpRange {
  const r = parseRange(text);
  // Throwing rather than answering false: a typo in a protected-network list must not read as "not protected".
  if (r === null) throw new TypeError(`${what}: not an IP address or CIDR: ${JSON.stringify(text)}`);
  return r;
}

/** Whether every address of `inner` (IP or CIDR) lies inside `outer` (IP or CIDR). Different families never contain each other. Throws on unparseable input. */
export function cidrContains(outer: string | CidrInfo, inner: string | CidrInfo): boolean {
  const o = requireRange(outer, "cidrContains");
  const i = requireRange(inner, "cidrContains");
  return o.family === i.family && o.first <= i.first && i.last <= o.last;
}

/** Whether two IPs/CIDRs share at least one address. Different families never overlap. Throws on unparseable input. */
export function rangesOverlap(a: string | CidrInfo | IpRange, b: string | CidrInfo | IpRange): boolean {
  const ra = isIpRange(a) ? a : requireRange(a, "rangesOverlap");
  const rb = isIpRange(b) ? b : requireRange(b, "rangesOverlap");
  return ra.family === rb.family && ra.first <= rb.last && rb.first <= ra.last;
}

function isIpRange(x: string | CidrInfo | IpRange): x is IpRange {
  return typeof x === "object" && "first" in x;
}

/*
 * ipaddr.js range() name -> our class. Anything not listed, including names a future ipaddr.js adds, is
 * "reserved": failing towards "special" keeps a new special range from silently becoming blockable public space.
 *
 *   family | ipaddr.js range()                  | class
 *   -------+------------------------------------+-------------
 *   v4     | unicast                            | public
 *   v4     | unspecified (0.0.0.0/8)            | unspecified
 *   v4     | loopback (127/8)                   | loopback
 *   v4     | private (10/8, 172.16/12, 192.168/16) | private
 *   v4     | carrierGradeNat (100.64/10)        | private
 *   v4     | linkLocal (169.254/16)             | link_local
 *   v4     | multicast (224/4)                  | multicast
 *   v4     | broadcast, reserved, as112, amt    | reserved
 *   v6     | unicast                            | public
 *   v6     | unspecified (::/128)               | unspecified
 *   v6     | loopback (::1/128)                 | loopback
 *   v6     | uniqueLocal (fc00::/7)             | private
 *   v6     | linkLocal (fe80::/10)              | link_local
 *   v6     | multicast (ff00::/8)               | multicast
 *   v6     | ipv4Mapped, rfc6145, rfc6052, 6to4, teredo, benchmarking, amt, as112v6, discard,
 *          | deprecatedSiteLocal, deprecatedOrchid, orchid2, droneRemoteIdProtocolEntityTags,
 *          | segmentRouting, reserved           | reserved
 *
 * ipv4Mapped never reaches classifyIp (canonical text folds it to IPv4); it only appears as a CIDR-overlap range.
 * Note that as112/amt/6to4/teredo are globally routed in IANA's registry; treating them as reserved is a
 * deliberate "do not touch" policy, not a routing fact.
 */
const V4_CLASS: Readonly<Record<string, IpClass>> = {
  unicast: "public",
  unspecified: "unspecified",
  loopback: "loopback",
  private: "private",
  carrierGradeNat: "private",
  linkLocal: "link_local",
  multicast: "multicast",
  broadcast: "reserved",
  reserved: "reserved",
  as112: "reserved",
  amt: "reserved",
};

const V6_CLASS: Readonly<Record<string, IpClass>> = {
  unicast: "public",
  unspecified: "unspecified",
  loopback: "loopback",
  uniqueLocal: "private",
  linkLocal: "link_local",
  multicast: "multicast",
};

function classOfRangeName(family: IpFamily, name: string): IpClass {
  const table = family === 4 ? V4_CLASS : V6_CLASS;
  return Object.hasOwn(table, name) ? table[name]! : "reserved";
}

/** Class of an IP literal (any accepted spelling; canonical is cheapest). Throws TypeError on non-IP text. */
export function classifyIp(canonical: string): IpClass {
  const p = parseStrict(canonical);
  if (p === null) throw new TypeError(`classifyIp: not an IP literal: ${JSON.stringify(canonical)}`);
  if (p.family === 4) {
    return classOfRangeName(4, new ipaddr.IPv4(octetsOf(p.v4)).range());
  }
  if (isV4MappedWords(wordScratch)) {
    return classOfRangeName(4, new ipaddr.IPv4(octetsOf(wordScratch[3]!)).range());
  }
  return classOfRangeName(6, new ipaddr.IPv6(wordsToParts(wordScratch)).range());
}

function octetsOf(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/** One special-purpose block: its class here and the ipaddr.js range name it came from. */
export type SpecialRange = IpRange & { cls: SpecialIpClass; source: string };

// When a block overlaps several special ranges we report one; the order puts the most consequential first
// (blocking loopback or the unspecified address breaks the host itself).
const CLASS_PRIORITY: readonly SpecialIpClass[] = [
  "loopback",
  "unspecified",
  "link_local",
  "private",
  "multicast",
  "reserved",
];

type RangeListLike = Record<string, unknown>;

function deriveSpecialRanges(): readonly SpecialRange[] {
  const out: SpecialRange[] = [];
  const sources: [IpFamily, unknown][] = [
    [4, (ipaddr.IPv4.prototype as unknown as { SpecialRanges?: unknown }).SpecialRanges],
    [6, (ipaddr.IPv6.prototype as unknown as { SpecialRanges?: unknown }).SpecialRanges],
  ];
  for (const [family, table] of sources) {
    // Deriving from ipaddr.js keeps classifyIp and the overlap check in agreement; if a new ipaddr.js stops
    // exposing the table we fail loudly at startup instead of letting every block through the check.
    if (table === null || typeof table !== "object") {
      throw new Error(`ipaddr.js no longer exposes IPv${family}.prototype.SpecialRanges; update src/lib/ip.ts`);
    }
    for (const [name, value] of Object.entries(table as RangeListLike)) {
      const cls = classOfRangeName(family, name);
      if (cls === "public" || !Array.isArray(value)) continue;
      const subnets = (Array.isArray(value[0]) ? value : [value]) as [{ toByteArray(): number[] }, number][];
      const bits = family === 4 ? 32 : 128;
      for (const [addr, prefix] of subnets) {
        let first = 0n;
        for (const byte of addr.toByteArray()) first = (first << 8n) | BigInt(byte);
        const size = 1n << BigInt(bits - prefix);
        first -= first % size;
        out.push({ family, first, last: first + size - 1n, cls, source: `${name}` });
      }
    }
  }
  out.sort((a, b) => CLASS_PRIORITY.indexOf(a.cls) - CLASS_PRIORITY.indexOf(b.cls) || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  return Object.freeze(out);
}

const SPECIAL_RANGES = deriveSpecialRanges();

/** The special-purpose ranges used by cidrIntersectsSpecialSpace, highest-priority class first (for tests and docs). */
export function specialRanges(): readonly Readonly<SpecialRange>[] {
  return SPECIAL_RANGES;
}

/**
 * The class of special space (loopback, private, ...) that any address of the IP/CIDR falls in, or null if the
 * whole range is public unicast. With several, the highest in CLASS_PRIORITY wins. Throws on unparseable input.
 */
export function cidrIntersectsSpecialSpace(cidr: string | CidrInfo): SpecialIpClass | null {
  const r = requireRange(cidr, "cidrIntersectsSpecialSpace");
  for (const s of SPECIAL_RANGES) {
    if (s.family === r.family && s.first <= r.last && r.first <= s.last) return s.cls;
  }
  return null;
}
