// Framing: HEC bodies (objects back to back) and batches (array or NDJSON) split into items whose
// raw text is the exact substring of the body; broken input yields error items, never a throw.
import { describe, expect, it } from "vitest";
import { splitBatch, splitConcatenated } from "./framing.ts";

describe("splitConcatenated (HEC bodies)", () => {
  it("splits objects back to back, with or without whitespace, keeping exact substrings", () => {
    const a = '{"event": {"eventid": "x", "src_ip": "1.2.3.4"}, "host": "h"}';
    const b = '{"event":{"msg":"has } and { and \\" inside"}}';
    const c = '{ "event" : { "n" : [1, {"d": "]"}] } }';
    for (const body of [a + b + c, `${a}\n${b}\r\n${c}\n`, `  ${a}  ${b}\t${c}  `]) {
      const { items, tooMany } = splitConcatenated(body, 10);
      expect(tooMany).toBe(false);
      expect(items.map((i) => i.raw)).toEqual([a, b, c]);
      expect(items.map((i) => i.error)).toEqual([undefined, undefined, undefined]);
      expect((items[1]!.value as { event: { msg: string } }).event.msg).toBe('has } and { and " inside');
    }
  });

  it("handles escaped backslashes before a closing quote", () => {
    const a = '{"p":"C:\\\\"}';
    const b = '{"q":"\\\\\\"}"}';
    const { items } = splitConcatenated(a + b, 10);
    expect(items.map((i) => i.raw)).toEqual([a, b]);
    expect(items[1]!.value).toEqual({ q: '\\"}' });
  });

  it("stops at a broken object: earlier items stay, the rest is one error item", () => {
    const good = '{"a":1}';
    for (const broken of ['{"b":', '{"b":"never ends}{"c":3}', '{"b":[1}{"c":3}', '{"b":1,,}{"c":3}', '[1,2]{"c":3}', "garbage {\"c\":3}"]) {
      const { items } = splitConcatenated(`${good} ${broken}`, 10);
      expect(items).toHaveLength(2);
      expect(items[0]).toEqual({ raw: good, value: { a: 1 } });
      expect(items[1]!.raw).toBe(broken);
      expect(items[1]!.error).toMatch(/^malformed JSON/);
      expect(items[1]!.value).toBeUndefined();
    }
  });

  it("reports more items than allowed", () => {
    const body = '{"a":1}{"a":2}{"a":3}';
    expect(splitConcatenated(body, 3)).toMatchObject({ tooMany: false });
    const over = splitConcatenated(body, 2);
    expect(over.tooMany).toBe(true);
    expect(over.items).toHaveLength(2);
  });

  it("gives no items for an empty or blank body", () => {
    expect(splitConcatenated("", 5)).toEqual({ items: [], tooMany: false });
    expect(splitConcatenated(" \n ", 5)).toEqual({ items: [], tooMany: false });
  });
});

describe("splitBatch: JSON arrays", () => {
  it("gives each element's exact substring, whatever the spacing", () => {
    const e1 = '{"source_ip": "1.2.3.4", "event_type": "scan"}';
    const e2 = '{"payload":{"s":"[,]"},"x":[1,[2,{"y":"}"}]]}';
    const body = `[\n  ${e1} ,\n\t${e2}\n]\n`;
    const { items, tooMany } = splitBatch(body, "application/json; charset=utf-8", 10);
    expect(tooMany).toBe(false);
    expect(items.map((i) => i.raw)).toEqual([e1, e2]);
    expect(items[1]!.value).toEqual(JSON.parse(e2));
    expect(splitBatch(`[${e1},${e2}]`, "application/json", 10).items.map((i) => i.raw)).toEqual([e1, e2]);
  });

  it("keeps non-object elements as items (the adapter rejects them) and an empty array as none", () => {
    expect(splitBatch('[1, "two", null, {"a":1}]', "application/json", 10).items.map((i) => i.value)).toEqual([1, "two", null, { a: 1 }]);
    expect(splitBatch(" [ ] ", "application/json", 10)).toEqual({ items: [], tooMany: false });
  });

  it("marks a bad element and carries on; a broken structure ends the batch", () => {
    const bad = splitBatch('[{"a":1}, {"b":1,,}, {"c":3}]', "application/json", 10);
    expect(bad.items.map((i) => [i.raw, i.error === undefined])).toEqual([
      ['{"a":1}', true],
      ['{"b":1,,}', false],
      ['{"c":3}', true],
    ]);
    const truncated = splitBatch('[{"a":1}, {"b":', "application/json", 10);
    expect(truncated.items).toHaveLength(2);
    expect(truncated.items[1]).toMatchObject({ raw: '{"b":', error: expect.stringMatching(/ends inside/) });
    const unclosed = splitBatch('[{"a":1}, {"b":2}', "application/json", 10);
    expect(unclosed.items.map((i) => i.error === undefined)).toEqual([true, true, false]);
    const missingComma = splitBatch('[{"a":1} {"b":2}]', "application/json", 10);
    expect(missingComma.items[1]!.error).toMatch(/expected ','/);
    const trailing = splitBatch('[{"a":1}] {"b":2}', "application/json", 10);
    expect(trailing.items[1]!.error).toMatch(/after the closing/);
  });

  it("reports more elements than allowed", () => {
    const r = splitBatch("[1,2,3,4]", "application/json", 3);
    expect(r.tooMany).toBe(true);
    expect(r.items).toHaveLength(3);
    expect(splitBatch("[1,2,3]", "application/json", 3).tooMany).toBe(false);
  });

  it("treats a JSON body that is not an array as objects back to back", () => {
    const r = splitBatch('{"a":1}\n{"a":2}', "application/json", 10);
    expect(r.items.map((i) => i.value)).toEqual([{ a: 1 }, { a: 2 }]);
  });
});

describe("splitBatch: NDJSON", () => {
  it("splits lines, ignores blank ones and tolerates CRLF", () => {
    const body = '{"a":1}\r\n\r\n  \n{"a":"x\\ny"}\n{"a":3}';
    for (const type of ["application/x-ndjson", "application/ndjson", "application/jsonl; charset=utf-8"]) {
      const { items } = splitBatch(body, type, 10);
      expect(items.map((i) => i.raw)).toEqual(['{"a":1}', '{"a":"x\\ny"}', '{"a":3}']);
      expect(items[1]!.value).toEqual({ a: "x\ny" });
    }
  });

  it("marks a bad line and keeps the rest", () => {
    const { items } = splitBatch('{"a":1}\n{"a":\n{"a":3}\n', "application/x-ndjson", 10);
    expect(items.map((i) => i.error === undefined)).toEqual([true, false, true]);
    expect(items[1]!.raw).toBe('{"a":');
  });

  it("reports more lines than allowed", () => {
    expect(splitBatch("1\n2\n3\n", "application/x-ndjson", 2)).toMatchObject({ tooMany: true });
    expect(splitBatch("1\n2\n\n", "application/x-ndjson", 2)).toMatchObject({ tooMany: false });
  });
});
