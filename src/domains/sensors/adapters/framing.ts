// Request bodies to items: HEC bodies (JSON objects back to back, as Cowrie's Splunk output and
// Splunk clients send them) and batches (a JSON array or NDJSON). Every item carries the exact
// substring it came from, so a retried request yields the same raw bytes and the same event keys;
// nothing is re-serialised.
//
// Errors: NDJSON lines and array elements have boundaries that survive a bad item, so a bad one
// becomes an item with `error` and the rest continue. In concatenated objects and arrays, once the
// structure itself is broken (a string or object that never ends, a closer that does not match)
// there is no trustworthy boundary left: that item covers the rest of the text and splitting stops.
// Resynchronising on the next "{" could start inside a string and invent events from its contents.
import { compoundEnd, isJsonWhitespace, skipWhitespace, valueEnd } from "./json-text.ts";

export type FramedItem = { raw: string; value?: unknown; error?: string };
export type Framed = { items: FramedItem[]; tooMany: boolean };

const parseItem = (raw: string): FramedItem => {
  try {
    return { raw, value: JSON.parse(raw) as unknown };
  } catch (err) {
    return { raw, error: `malformed JSON: ${(err as Error).message}` };
  }
};

const brokenTail = (text: string, start: number, reason: string): FramedItem => ({ raw: text.slice(start), error: reason });

const boundaryError = (end: number): string => (end === -1 ? "malformed JSON: the text ends inside this value" : "malformed JSON: a closing bracket does not match its opening one");

/** One or more JSON objects, back to back or separated by whitespace (a Splunk HEC body). */
export const splitConcatenated = (text: string, maxItems: number): Framed => {
  const items: FramedItem[] = [];
  const n = text.length;
  let i = skipWhitespace(text, 0);
  while (i < n) {
    if (items.length === maxItems) return { items, tooMany: true };
    if (text.charCodeAt(i) !== 0x7b) {
      items.push(brokenTail(text, i, "malformed JSON: expected an object ('{')"));
      break;
    }
    const end = compoundEnd(text, i);
    if (end < 0) {
      items.push(brokenTail(text, i, boundaryError(end)));
      break;
    }
    const item = parseItem(text.slice(i, end));
    items.push(item);
    if (item.error) {
      // The brackets matched but the content is not JSON: its end is still only a guess.
      if (end < n) items[items.length - 1] = brokenTail(text, i, item.error);
      break;
    }
    i = skipWhitespace(text, end);
  }
  return { items, tooMany: false };
};

const isNdjsonType = (contentType: string): boolean => /^\s*application\/(x-)?(ndjson|jsonl|jsonlines|json-seq)\b/i.test(contentType);

/** Each non-blank line one item; "\r\n" tolerated. A bad line is an item with `error`. */
const splitNdjson = (text: string, maxItems: number): Framed => {
  const items: FramedItem[] = [];
  let start = 0;
  const n = text.length;
  while (start < n) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = n;
    let lineEnd = end;
    if (lineEnd > start && text.charCodeAt(lineEnd - 1) === 0x0d) lineEnd--;
    // Leading and trailing blanks are not part of the item (a retry that re-indents still dedups).
    let a = start;
    while (a < lineEnd && isJsonWhitespace(text.charCodeAt(a))) a++;
    let b = lineEnd;
    while (b > a && isJsonWhitespace(text.charCodeAt(b - 1))) b--;
    if (b > a) {
      if (items.length === maxItems) return { items, tooMany: true };
      items.push(parseItem(text.slice(a, b)));
    }
    start = end + 1;
  }
  return { items, tooMany: false };
};

/**
 * The elements of a top-level JSON array, each as its exact substring. A well-formed body is parsed
 * once (the scanner then only finds boundaries); a body that does not parse is parsed per element,
 * so the good elements survive a bad one.
 */
const splitArray = (text: string, open: number, maxItems: number): Framed => {
  let whole: unknown[] | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (Array.isArray(parsed)) whole = parsed;
  } catch {
    whole = undefined;
  }
  if (whole) {
    const fast = splitArrayBoundaries(text, open, maxItems, whole);
    if (fast) return fast;
  }
  return splitArrayItems(text, open, maxItems);
};

/** Boundaries only, values from the whole-body parse; undefined if the two ever disagree. */
const splitArrayBoundaries = (text: string, open: number, maxItems: number, values: unknown[]): Framed | undefined => {
  const items: FramedItem[] = [];
  const n = text.length;
  let i = skipWhitespace(text, open + 1);
  if (text.charCodeAt(i) === 0x5d) return values.length === 0 ? { items, tooMany: false } : undefined;
  while (i < n) {
    if (items.length === maxItems) return { items, tooMany: true };
    const end = valueEnd(text, i);
    if (end <= i || items.length >= values.length) return undefined;
    items.push({ raw: text.slice(i, end), value: values[items.length] });
    i = skipWhitespace(text, end);
    const c = text.charCodeAt(i);
    if (c === 0x2c) i = skipWhitespace(text, i + 1);
    else if (c === 0x5d) return items.length === values.length ? { items, tooMany: false } : undefined;
    else return undefined;
  }
  return undefined;
};

const splitArrayItems = (text: string, open: number, maxItems: number): Framed => {
  const items: FramedItem[] = [];
  const n = text.length;
  let i = skipWhitespace(text, open + 1);
  if (text.charCodeAt(i) === 0x5d) {
    const rest = skipWhitespace(text, i + 1);
    if (rest < n) items.push(brokenTail(text, rest, "malformed JSON: text after the closing ']'"));
    return { items, tooMany: false };
  }
  while (i < n) {
    if (items.length === maxItems) return { items, tooMany: true };
    const end = valueEnd(text, i);
    if (end < 0) {
      items.push(brokenTail(text, i, boundaryError(end)));
      return { items, tooMany: false };
    }
    if (end === i) {
      items.push(brokenTail(text, i, "malformed JSON: expected a value"));
      return { items, tooMany: false };
    }
    items.push(parseItem(text.slice(i, end)));
    i = skipWhitespace(text, end);
    const c = text.charCodeAt(i);
    if (c === 0x2c) {
      i = skipWhitespace(text, i + 1);
      continue;
    }
    if (c === 0x5d) {
      const rest = skipWhitespace(text, i + 1);
      if (rest < n) items.push(brokenTail(text, rest, "malformed JSON: text after the closing ']'"));
      return { items, tooMany: false };
    }
    items.push(brokenTail(text, i, i < n ? "malformed JSON: expected ',' or ']' between elements" : "malformed JSON: the array is not closed"));
    return { items, tooMany: false };
  }
  items.push(brokenTail(text, i, "malformed JSON: the array is not closed"));
  return { items, tooMany: false };
};

/**
 * A batch body: a JSON array (application/json), NDJSON (application/x-ndjson and friends), or,
 * under application/json, objects back to back (a single object is a batch of one).
 */
export const splitBatch = (text: string, contentType: string, maxItems: number): Framed => {
  if (isNdjsonType(contentType)) return splitNdjson(text, maxItems);
  const first = skipWhitespace(text, 0);
  if (text.charCodeAt(first) === 0x5b) return splitArray(text, first, maxItems);
  return splitConcatenated(text, maxItems);
};
