// RFC 8785 canonicalization: the RFC's own examples and Appendix B number table, plus what must be rejected.
import { describe, expect, it } from "vitest";
import { canonicalize } from "./jcs.ts";

const fromBits = (hex: string): number => Buffer.from(hex, "hex").readDoubleBE(0);

describe("canonicalize: RFC 8785 examples", () => {
  it("§3.2.2 serialisation of primitive data types", () => {
    // The RFC's input text, verbatim (escapes included), parsed as JSON.
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    expect(canonicalize(JSON.parse(input))).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    );
  });

  it("§3.2.3 sorts keys by UTF-16 code units, not code points", () => {
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis",
    };
    const out = canonicalize(input);
    expect(out).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    // U+1F600 (as D83D DE00) sorts before U+FB33 only when comparing UTF-16 code units.
    expect(out.indexOf("\ud83d\ude00")).toBeLessThan(out.indexOf("\ufb33"));
  });

  it("Appendix B number serialisation", () => {
    const table: Array<[string, string]> = [
      ["0000000000000000", "0"],
      ["8000000000000000", "0"],
      ["0000000000000001", "5e-324"],
      ["8000000000000001", "-5e-324"],
      ["7fefffffffffffff", "1.7976931348623157e+308"],
      ["ffefffffffffffff", "-1.7976931348623157e+308"],
      ["4340000000000000", "9007199254740992"],
      ["c340000000000000", "-9007199254740992"],
      ["4430000000000000", "295147905179352830000"],
      ["44b52d02c7e14af5", "9.999999999999997e+22"],
      ["44b52d02c7e14af6", "1e+23"],
      ["44b52d02c7e14af7", "1.0000000000000001e+23"],
      ["444b1ae4d6e2ef4e", "999999999999999700000"],
      ["444b1ae4d6e2ef4f", "999999999999999900000"],
      ["444b1ae4d6e2ef50", "1e+21"],
      ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
      ["3eb0c6f7a0b5ed8d", "0.000001"],
      ["41b3de4355555553", "333333333.3333332"],
      ["41b3de4355555554", "333333333.33333325"],
      ["41b3de4355555555", "333333333.3333333"],
      ["41b3de4355555556", "333333333.3333334"],
      ["41b3de4355555557", "333333333.33333343"],
      ["becbf647612f3696", "-0.0000033333333333333333"],
      ["43143ff3c1cb0959", "1424953923781206.2"],
    ];
    for (const [bits, want] of table) expect(canonicalize(fromBits(bits)), bits).toBe(want);
    // The table's two error rows: NaN and Infinity.
    expect(() => canonicalize(fromBits("7fffffffffffffff"))).toThrow(TypeError);
    expect(() => canonicalize(fromBits("7ff0000000000000"))).toThrow(TypeError);
  });

  it("number edge cases", () => {
    expect(canonicalize(1e21)).toBe("1e+21");
    expect(canonicalize(1e20)).toBe("100000000000000000000");
    expect(canonicalize(1e-7)).toBe("1e-7");
    expect(canonicalize(1e-6)).toBe("0.000001");
    expect(canonicalize(-0)).toBe("0");
    expect(canonicalize(333333333.33333329)).toBe("333333333.3333333");
    expect(canonicalize(0.1 + 0.2)).toBe("0.30000000000000004");
    expect(canonicalize(-1.5)).toBe("-1.5");
    expect(canonicalize([Number.MAX_SAFE_INTEGER, Number.MIN_VALUE])).toBe("[9007199254740991,5e-324]");
    expect(() => canonicalize(-Infinity)).toThrow(TypeError);
    expect(() => canonicalize({ a: [NaN] })).toThrow(TypeError);
  });
});

describe("canonicalize: structure", () => {
  it("has no whitespace, sorts nested objects, keeps array order", () => {
    expect(canonicalize({ b: [3, { z: 1, a: null }], a: { d: true, c: "x" } })).toBe(
      '{"a":{"c":"x","d":true},"b":[3,{"a":null,"z":1}]}',
    );
    expect(canonicalize({})).toBe("{}");
    expect(canonicalize([])).toBe("[]");
    expect(canonicalize("")).toBe('""');
    expect(canonicalize(null)).toBe("null");
    expect(canonicalize(Object.assign(Object.create(null) as object, { b: 1, a: 2 }))).toBe('{"a":2,"b":1}');
  });

  it("escapes strings exactly as JSON.stringify", () => {
    const all = Array.from({ length: 0x80 }, (_, i) => String.fromCharCode(i)).join("") + "\u2028\u2029\u00ff\ud83d\ude00";
    expect(canonicalize(all)).toBe(JSON.stringify(all));
    expect(canonicalize("\u0000\b\t\n\f\r\u001f\"\\/\u007f")).toBe(String.raw`"\u0000\b\t\n\f\r\u001f\"\\/` + '\u007f"');
    expect(canonicalize({ "\n": 1 })).toBe('{"\\n":1}');
  });

  it("omits undefined members and writes undefined array items as null, like JSON.stringify", () => {
    expect(canonicalize({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonicalize([undefined, 1])).toBe("[null,1]");
    // eslint-disable-next-line no-sparse-arrays
    expect(canonicalize([1, , 3])).toBe("[1,null,3]");
  });

  it("honours toJSON and unwraps boxed primitives", () => {
    expect(canonicalize({ at: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) })).toBe('{"at":"2026-01-02T03:04:05.000Z"}');
    expect(canonicalize({ toJSON: (k: string) => ({ key: k }) })).toBe('{"key":""}');
    expect(canonicalize([Object(1), Object("s"), Object(false)])).toBe('[1,"s",false]');
  });

  it("rejects what is not I-JSON data", () => {
    const bad: unknown[] = [
      undefined,
      10n,
      { a: 10n },
      () => 1,
      { f: () => 1 },
      [() => 1],
      Symbol("s"),
      { s: Symbol("s") },
      "\ud800",
      "a\udc00b",
      { "\ud83d": 1 },
      new Map([["a", 1]]),
      new Set([1]),
      new (class Point {
        x = 1;
      })(),
      /re/,
    ];
    for (const v of bad) expect(() => canonicalize(v), String(typeof v)).toThrow(TypeError);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => canonicalize(cyc)).toThrow(TypeError);
    const arr: unknown[] = [];
    arr.push([arr]);
    expect(() => canonicalize(arr)).toThrow(TypeError);
  });

  it("allows the same object twice when it is not a cycle", () => {
    const shared = { x: 1 };
    expect(canonicalize({ a: shared, b: [shared, shared] })).toBe('{"a":{"x":1},"b":[{"x":1},{"x":1}]}');
  });

  it("is a fixed point under JSON.parse, and independent of insertion order", () => {
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const chars = ["a", "B", "é", "€", "\ud83d\ude00", "\n", '"', "\\", "1", "\u0080", "\ufb33", " "];
    const str = (): string => Array.from({ length: rnd(6) }, () => chars[rnd(chars.length)]).join("");
    const gen = (depth: number): unknown => {
      switch (depth > 3 ? rnd(4) : rnd(6)) {
        case 0:
          return rnd(2) === 0 ? null : rnd(2) === 0;
        case 1:
          return (rnd(2000000) - 1000000) / 10 ** rnd(12);
        case 2:
          return str();
        case 3:
          return rnd(1e9) * 10 ** (rnd(40) - 20);
        case 4:
          return Array.from({ length: rnd(5) }, () => gen(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: rnd(6) }, () => [str(), gen(depth + 1)]));
      }
    };
    for (let i = 0; i < 300; i++) {
      const v = gen(0);
      const c = canonicalize(v);
      expect(canonicalize(JSON.parse(c))).toBe(c);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        const reversed = Object.fromEntries(Object.entries(v).reverse());
        expect(canonicalize(reversed)).toBe(c);
      }
    }
  });
});
