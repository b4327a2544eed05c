// The JSON text scanner: value boundaries, and in-place rewriting of chosen values that leaves every
// other byte as it was; plus canonicalIp's fast path agreeing with normalizeIp.
import { describe, expect, it } from "vitest";
import { normalizeIp } from "../../../lib/ip.ts";
import { mulberry32 } from "../../../lib/prng.ts";
import { compoundEnd, pathKey, rewriteJsonValues, valueEnd } from "./json-text.ts";
import { canonicalIp } from "./types.ts";

const rewrite = (text: string, entries: [string[], string][]) => rewriteJsonValues(text, new Map(entries.map(([p, v]) => [pathKey(p), v])));

describe("value boundaries", () => {
  it("finds the end of objects, arrays, strings and scalars", () => {
    expect(compoundEnd('{"a":"}"}xyz', 0)).toBe(9);
    expect(compoundEnd('[1,[2,"]"],{}] tail', 0)).toBe(14);
    expect(compoundEnd('{"a":[}', 0)).toBe(-2);
    expect(compoundEnd('{"a":"', 0)).toBe(-1);
    expect(valueEnd('"a\\"b" ,', 0)).toBe(6);
    expect(valueEnd("-12.5e3,", 0)).toBe(7);
    expect(valueEnd("true]", 0)).toBe(4);
  });
});

describe("rewriteJsonValues", () => {
  it("replaces only the named values, keeping spacing and everything else byte for byte", () => {
    const text = '{ "user" : "root",\n  "password" : "hunter2" , "n": [1, {"password": "deep"}] }';
    expect(rewrite(text, [[["password"], "[redacted]"]])).toBe('{ "user" : "root",\n  "password" : "[redacted]" , "n": [1, {"password": "deep"}] }');
    expect(rewrite(text, [[["n", "1", "password"], "X"]])).toBe('{ "user" : "root",\n  "password" : "hunter2" , "n": [1, {"password": "X"}] }');
  });

  it("replaces non-string values and every duplicate of a key", () => {
    expect(rewrite('{"p":123,"q":{"r":[1,2]},"p":null}', [[["p"], "x"], [["q"], "y"]])).toBe('{"p":"x","q":"y","p":"x"}');
  });

  it("matches escaped keys by their decoded name and escapes replacements", () => {
    expect(rewrite('{"pass\\u0077ord":"a"}', [[["password"], 'say "hi"\\']])).toBe('{"pass\\u0077ord":"say \\"hi\\"\\\\"}');
  });

  it("returns the text itself when nothing matches or nothing is asked", () => {
    const text = '{"a":{"b":1}}';
    expect(rewrite(text, [])).toBe(text);
    expect(rewrite(text, [[["a", "c"], "x"]])).toBe(text);
    expect(rewrite("[1,2]", [[["5"], "x"]])).toBe("[1,2]");
  });
});

describe("canonicalIp", () => {
  it("agrees with normalizeIp on valid, odd and invalid spellings", () => {
    const rand = mulberry32(7);
    const samples = ["1.2.3.4", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", " 1.2.3.4", "0.0.0.0", "::ffff:1.2.3.4", "2001:DB8::1", "", "1.2.3.4\n", "1..2.3"];
    for (let i = 0; i < 2000; i++) {
      const parts = Array.from({ length: 3 + Math.floor(rand() * 3) }, () => String(Math.floor(rand() * 300)).padStart(rand() < 0.1 ? 3 : 1, "0"));
      samples.push(parts.join("."));
    }
    for (const s of samples) expect(canonicalIp(s)).toBe(normalizeIp(s));
  });
});
