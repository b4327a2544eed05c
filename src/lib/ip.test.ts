// Unit tests for IP normalisation, classification and range helpers.
// The hand-written parsers are checked against ipaddr.js so the hot path cannot drift from the canonical forms.
import { describe, it, expect } from "vitest";
import ipaddr from "ipaddr.js";
import {
  cidrContains,
  cidrIntersectsSpecialSpace,
  classifyIp,
  normalizeCidr,
  normalizeIp,
  parseIpv4ToUint32,
  parseIpv6ToWords,
  parseRange,
  rangesOverlap,
  specialRanges,
} from "./ip.ts";
import { mulberry32 } from "./prng.ts";
import { v4Text, v6Text } from "./ip.testing.ts";


describe("normalizeIp: IPv4", () => {
  it.each([
    ["1.2.3.4", "1.2.3.4"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["10.0.0.1", "10.0.0.1"],
    ["192.168.100.200", "192.168.100.200"],
  ])("%s -> %s", (input, expected) => {
    expect(normalizeIp(input)).toBe(expected);
  });

  it.each([
    "1",
    "1.2",
    "1.2.3",
    "1.2.3.4.5",
    "0x7f.1",
    "0x7f.0.0.1",
    "010.1.1.1",
    "1.2.3.04",
    "00.1.2.3",
    "256.1.1.1",
    "1.2.3.256",
    "1.2.3.99999999999",
    "-1.2.3.4",
    "+1.2.3.4",
    "1.2.3.",
    ".1.2.3",
    "1..2.3",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "1.2.3.4/32",
    "1.2.3.a",
    "١.٢.٣.٤",
    "",
    "4294967295",
  ])("rejects %j", (input) => {
    expect(normalizeIp(input)).toBeNull();
  });
});

describe("normalizeIp: IPv6", () => {
  it.each([
    ["::", "::"],
    ["::1", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
    ["2001:db8::0:1", "2001:db8::1"],
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["1::2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["fe80::1", "fe80::1"],
    ["FF02::1", "ff02::1"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    // RFC 4291 IPv4-compatible form: not v4-mapped, so it stays IPv6 (ipaddr.js alone gets this wrong).
    ["::1.2.3.4", "::102:304"],
    ["::ffff:0:1.2.3.4", "::ffff:0:102:304"],
  ])("%s -> %s", (input, expected) => {
    expect(normalizeIp(input)).toBe(expected);
  });

  it.each([
    ["::ffff:1.2.3.4", "1.2.3.4"],
    ["::FFFF:1.2.3.4", "1.2.3.4"],
    ["::ffff:102:304", "1.2.3.4"],
    ["0:0:0:0:0:ffff:0102:0304", "1.2.3.4"],
    ["::ffff:0.0.0.0", "0.0.0.0"],
    ["::ffff:ffff:ffff", "255.255.255.255"],
    ["::ffff:127.0.0.1", "127.0.0.1"],
  ])("folds v4-mapped %s -> %s", (input, expected) => {
    expect(normalizeIp(input)).toBe(expected);
  });

  it.each([
    "fe80::1%eth0",
    "fe80::1%1",
    "::ffff:1.2.3.4%eth0",
    ":::",
    "1:::2",
    "1::2::3",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4::5:6:7:8",
    "12345::1",
    "g::1",
    " ::1",
    "::1 ",
    "[::1]",
    "::ffff:010.1.1.1",
    "::ffff:0x10.1.1.1",
    "::ffff:1.2.3",
    "::ffff:1.2.3.4.5",
    "::ffff:256.1.1.1",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1.2.3.4::",
    "::1.2.3.4:5",
    "::/0",
    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:0",
    "0000000000000000000000000000000000000000000000::1",
  ])("rejects %j", (input) => {
    expect(normalizeIp(input)).toBeNull();
  });

  it("rejects non-string input", () => {
    expect(normalizeIp(undefined as unknown as string)).toBeNull();
    expect(normalizeIp(123 as unknown as string)).toBeNull();
  });
});

describe("normalizeCidr", () => {
  it.each([
    ["10.1.2.3/8", { network: "10.0.0.0", prefix: 8, family: 4, text: "10.0.0.0/8" }],
    ["10.0.0.0/8", { network: "10.0.0.0", prefix: 8, family: 4, text: "10.0.0.0/8" }],
    ["1.2.3.4/32", { network: "1.2.3.4", prefix: 32, family: 4, text: "1.2.3.4/32" }],
    ["1.2.3.4/0", { network: "0.0.0.0", prefix: 0, family: 4, text: "0.0.0.0/0" }],
    ["192.168.1.255/23", { network: "192.168.0.0", prefix: 23, family: 4, text: "192.168.0.0/23" }],
    ["255.255.255.255/31", { network: "255.255.255.254", prefix: 31, family: 4, text: "255.255.255.254/31" }],
    ["2001:db8::ff/64", { network: "2001:db8::", prefix: 64, family: 6, text: "2001:db8::/64" }],
    ["2001:DB8:1:2:3:4:5:6/33", { network: "2001:db8::", prefix: 33, family: 6, text: "2001:db8::/33" }],
    ["2001:db8:ffff:ffff::/33", { network: "2001:db8:8000::", prefix: 33, family: 6, text: "2001:db8:8000::/33" }],
    ["::1/128", { network: "::1", prefix: 128, family: 6, text: "::1/128" }],
    ["ffff::1/0", { network: "::", prefix: 0, family: 6, text: "::/0" }],
    ["::ffff:10.1.2.3/104", { network: "10.0.0.0", prefix: 8, family: 4, text: "10.0.0.0/8" }],
    ["::ffff:a01:203/104", { network: "10.0.0.0", prefix: 8, family: 4, text: "10.0.0.0/8" }],
    ["::ffff:1.2.3.4/128", { network: "1.2.3.4", prefix: 32, family: 4, text: "1.2.3.4/32" }],
    ["::ffff:0:0/96", { network: "0.0.0.0", prefix: 0, family: 4, text: "0.0.0.0/0" }],
    // Below /96 the block reaches outside the mapped space, so it stays IPv6.
    ["::ffff:1.2.3.4/95", { network: "::fffe:0:0", prefix: 95, family: 6, text: "::fffe:0:0/95" }],
    ["::ffff:1.2.3.4/80", { network: "::", prefix: 80, family: 6, text: "::/80" }],
  ])("%s", (input, expected) => {
    expect(normalizeCidr(input)).toEqual(expected);
  });

  it.each([
    "1.2.3.4",
    "::1",
    "1.2.3.4/33",
    "1.2.3.4/-1",
    "1.2.3.4/+8",
    "1.2.3.4/",
    "1.2.3.4/033",
    "1.2.3.4/08",
    "1.2.3.4/00",
    "1.2.3.4/8/8",
    "1.2.3.4/ 8",
    "1.2.3.4/8 ",
    " 1.2.3.4/8",
    "1.2.3.4/0x8",
    "1.2.3.4/1e1",
    "010.0.0.0/8",
    "10/8",
    "10.0/16",
    "::/129",
    "::/1280",
    "fe80::%eth0/64",
    "::ffff:1.2.3.4/129",
    "/8",
    "",
  ])("rejects %j", (input) => {
    expect(normalizeCidr(input)).toBeNull();
  });

  it("is idempotent on its own output", () => {
    for (const text of ["10.1.2.3/8", "2001:db8::ff/64", "::ffff:1.2.3.4/100", "::/0", "0.0.0.0/0"]) {
      const once = normalizeCidr(text)!;
      expect(normalizeCidr(once.text)).toEqual(once);
    }
  });
});

describe("classifyIp", () => {
  it.each([
    ["8.8.8.8", "public"],
    ["1.1.1.1", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.255", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.0", "public"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["100.127.255.255", "private"],
    ["100.128.0.0", "public"],
    ["169.254.1.1", "link_local"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.255", "multicast"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["255.255.255.255", "reserved"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.1", "reserved"],
    ["198.51.100.1", "reserved"],
    ["203.0.113.1", "reserved"],
    ["198.18.0.1", "reserved"],
    ["192.175.48.1", "reserved"],
    ["192.52.193.1", "reserved"],
  ])("IPv4 %s is %s", (ip, cls) => {
    expect(classifyIp(ip)).toBe(cls);
  });

  it.each([
    ["2606:4700::1111", "public"],
    ["2a00:1450::1", "public"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fe80::1", "link_local"],
    ["febf:ffff::1", "link_local"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "reserved"],
    ["2002::1", "reserved"],
    ["2001::1", "reserved"],
    ["2001:2::1", "reserved"],
    ["64:ff9b::1", "reserved"],
    ["100::1", "reserved"],
    ["fec0::1", "reserved"],
    ["3fff::1", "reserved"],
    ["5f00::1", "reserved"],
    ["::ffff:0:1.2.3.4", "reserved"],
  ])("IPv6 %s is %s", (ip, cls) => {
    expect(classifyIp(ip)).toBe(cls);
  });

  it.each([
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:808:808", "public"],
    ["::ffff:169.254.0.1", "link_local"],
  ])("v4-mapped %s classifies as IPv4 (%s)", (ip, cls) => {
    expect(classifyIp(ip)).toBe(cls);
  });

  it("throws on non-IP text", () => {
    expect(() => classifyIp("example.com")).toThrow(TypeError);
    expect(() => classifyIp("10.0.0.0/8")).toThrow(TypeError);
  });

  it("agrees with the special-range table at both ends of every range", () => {
    for (const r of specialRanges()) {
      if (r.source === "ipv4Mapped") continue; // folds to IPv4 before classification
      for (const v of [r.first, r.last]) {
        const text = r.family === 4 ? v4Text(v) : v6Text(v);
        expect([text, classifyIp(text)]).toEqual([text, r.cls]);
      }
    }
  });
});

describe("cidrIntersectsSpecialSpace", () => {
  it.each([
    ["8.8.8.0/24", null],
    ["8.0.0.0/7", null],
    ["11.0.0.0/8", null],
    ["10.0.0.0/8", "private"],
    ["10.1.0.0/16", "private"],
    ["8.0.0.0/6", "private"],
    ["0.0.0.0/0", "loopback"],
    ["127.0.0.1", "loopback"],
    ["1.2.3.4", null],
    ["100.64.0.0/10", "private"],
    ["100.0.0.0/8", "private"],
    ["169.254.0.0/16", "link_local"],
    ["224.0.0.0/3", "multicast"],
    ["240.0.0.0/4", "reserved"],
    ["255.255.255.255/32", "reserved"],
    ["192.0.2.0/24", "reserved"],
    ["2606:4700::/32", null],
    ["2000::/3", "reserved"],
    ["::/0", "loopback"],
    ["::/127", "loopback"],
    ["fc00::/7", "private"],
    // Reaches fe80::/10 too; link_local outranks private.
    ["fc00::/6", "link_local"],
    ["fe80::/64", "link_local"],
    ["ff00::/8", "multicast"],
    ["2001:db8::/48", "reserved"],
    ["::ffff:0:0/95", "reserved"],
    ["::ffff:10.0.0.0/104", "private"],
  ])("%s -> %s", (cidr, expected) => {
    expect(cidrIntersectsSpecialSpace(cidr)).toBe(expected);
  });

  it("accepts a normalizeCidr result and throws on garbage", () => {
    expect(cidrIntersectsSpecialSpace(normalizeCidr("10.9.0.0/16")!)).toBe("private");
    expect(() => cidrIntersectsSpecialSpace("10.0.0.0/33")).toThrow(TypeError);
  });
});

describe("cidrContains / rangesOverlap / parseRange", () => {
  it("contains", () => {
    expect(cidrContains("10.0.0.0/8", "10.1.2.3")).toBe(true);
    expect(cidrContains("10.0.0.0/8", "10.255.255.255")).toBe(true);
    expect(cidrContains("10.0.0.0/8", "11.0.0.0")).toBe(false);
    expect(cidrContains("10.0.0.0/8", "10.0.0.0/8")).toBe(true);
    expect(cidrContains("10.0.0.0/8", "10.0.0.0/7")).toBe(false);
    expect(cidrContains("10.0.0.0/8", "10.128.0.0/9")).toBe(true);
    expect(cidrContains("10.0.0.0/8", "::ffff:10.1.2.3")).toBe(true);
    expect(cidrContains("::ffff:10.0.0.0/104", "10.1.2.3")).toBe(true);
    expect(cidrContains("2001:db8::/32", "2001:db8:ffff::1")).toBe(true);
    expect(cidrContains("2001:db8::/32", "2001:db9::")).toBe(false);
    expect(cidrContains("1.2.3.4", "1.2.3.4")).toBe(true);
    expect(cidrContains("0.0.0.0/0", "255.255.255.255")).toBe(true);
    expect(cidrContains("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(true);
  });

  it("keeps IPv4 and IPv6 apart", () => {
    expect(cidrContains("::/0", "10.0.0.1")).toBe(false);
    expect(rangesOverlap("::/0", "0.0.0.0/0")).toBe(false);
  });

  it("overlaps", () => {
    expect(rangesOverlap("10.0.0.0/8", "10.1.0.0/16")).toBe(true);
    expect(rangesOverlap("10.1.0.0/16", "10.0.0.0/8")).toBe(true);
    expect(rangesOverlap("10.0.0.0/8", "11.0.0.0/8")).toBe(false);
    expect(rangesOverlap("10.0.0.0/8", "10.255.255.255")).toBe(true);
    expect(rangesOverlap("2001:db8::/32", "2001:db8:1::/48")).toBe(true);
    expect(rangesOverlap(parseRange("1.0.0.0/8")!, "1.2.3.4")).toBe(true);
  });

  it("throws on unparseable input instead of answering false", () => {
    expect(() => cidrContains("10.0.0.0/8", "10.1.2")).toThrow(TypeError);
    expect(() => rangesOverlap("nope", "10.0.0.0/8")).toThrow(TypeError);
  });

  it("parseRange gives inclusive numeric bounds", () => {
    expect(parseRange("10.0.0.0/8")).toEqual({ family: 4, first: 0x0a000000n, last: 0x0affffffn });
    expect(parseRange("::ffff:1.2.3.4")).toEqual({ family: 4, first: 0x01020304n, last: 0x01020304n });
    expect(parseRange("::/0")).toEqual({ family: 6, first: 0n, last: (1n << 128n) - 1n });
    expect(parseRange("10.0.0.0/33")).toBeNull();
    expect(parseRange("junk")).toBeNull();
  });
});

describe("hot-path parsers", () => {
  it("parseIpv4ToUint32 matches known values", () => {
    expect(parseIpv4ToUint32("0.0.0.0")).toBe(0);
    expect(parseIpv4ToUint32("255.255.255.255")).toBe(0xffffffff);
    expect(parseIpv4ToUint32("1.2.3.4")).toBe(0x01020304);
    expect(parseIpv4ToUint32("128.0.0.0")).toBe(0x80000000);
    for (const bad of ["", "1.2.3", "01.2.3.4", "1.2.3.4.", "1.2.3.256", "1.2.3.4 ", "a.b.c.d", "::1", "1.2.3.-4", "1234.1.1.1"]) {
      expect([bad, parseIpv4ToUint32(bad)]).toEqual([bad, -1]);
    }
  });

  it("parseIpv4ToUint32 agrees with ipaddr.js four-part decimal on random and mutated input", () => {
    const rnd = mulberry32(4);
    const alphabet = "0123456789.x ";
    for (let i = 0; i < 20000; i++) {
      let s: string;
      if (i % 2 === 0) {
        const o = () => Math.floor(rnd() * 300);
        s = `${o()}.${o()}.${o()}.${o()}`;
      } else {
        s = "";
        const len = 1 + Math.floor(rnd() * 16);
        for (let k = 0; k < len; k++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      }
      const expected = ipaddr.IPv4.isValidFourPartDecimal(s)
        ? ipaddr.IPv4.parse(s).octets.reduce((acc, b) => acc * 256 + b, 0)
        : -1;
      expect([s, parseIpv4ToUint32(s)]).toEqual([s, expected]);
    }
  });

  it("parseIpv6ToWords agrees with ipaddr.js on random addresses in many spellings", () => {
    const rnd = mulberry32(6);
    const out = new Uint32Array(4);
    for (let i = 0; i < 5000; i++) {
      const parts: number[] = [];
      for (let k = 0; k < 8; k++) parts.push(rnd() < 0.4 ? 0 : Math.floor(rnd() * 0x10000));
      const addr = new ipaddr.IPv6(parts);
      const spellings = [
        addr.toRFC5952String(),
        addr.toNormalizedString(),
        parts.map((p) => p.toString(16).padStart(4, "0")).join(":"),
        parts.map((p) => p.toString(16).padStart(4, "0")).join(":").toUpperCase(),
        `${parts.slice(0, 6).map((p) => p.toString(16)).join(":")}:${parts[6]! >> 8}.${parts[6]! & 255}.${parts[7]! >> 8}.${parts[7]! & 255}`,
      ];
      for (const s of spellings) {
        expect(parseIpv6ToWords(s, out)).toBe(true);
        const got = Array.from(out).flatMap((w) => [w >>> 16, w & 0xffff]);
        expect([s, got]).toEqual([s, parts]);
        expect(ipaddr.IPv6.isValid(s)).toBe(true);
      }
    }
  });

  it("parseIpv6ToWords accepts exactly what normalizeIp accepts for colon text (fuzzed)", () => {
    const rnd = mulberry32(7);
    const alphabet = "0123456789abcdefABCDEF::::....%g ";
    const out = new Uint32Array(4);
    let accepted = 0;
    for (let i = 0; i < 30000; i++) {
      let s = "";
      const len = 2 + Math.floor(rnd() * 20);
      for (let k = 0; k < len; k++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      if (!s.includes(":")) continue;
      const ok = parseIpv6ToWords(s, out);
      if (ok) accepted++;
      expect([s, ok]).toEqual([s, normalizeIp(s) !== null]);
    }
    // The fuzz must reach the accepting side too, or it proves nothing.
    expect(accepted).toBeGreaterThan(50);
  });
});

