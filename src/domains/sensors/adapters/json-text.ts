// A small scanner over JSON text: finds where a value ends without parsing it (so framing can hand
// out the exact bytes of each item) and rewrites chosen values in place (so redacted raw text keeps
// every other byte as the sender wrote it). It assumes nothing about validity: callers JSON.parse
// the substrings they get.

const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

export const isJsonWhitespace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export const skipWhitespace = (text: string, i: number): number => {
  const n = text.length;
  while (i < n && isJsonWhitespace(text.charCodeAt(i))) i++;
  return i;
};

/** text[i] is a quote: the index just past the closing quote, or -1 when the string never ends. */
export const stringEnd = (text: string, i: number): number => {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    let backslashes = 0;
    for (let b = q - 1; b > i && text.charCodeAt(b) === BACKSLASH; b--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    from = q + 1;
  }
};

/** Nesting deeper than this is refused rather than scanned (JSON.parse would choke first anyway). */
const MAX_DEPTH = 512;

/**
 * text[i] opens an object or array: the index just past its matching close, -1 when the text ends
 * first, -2 when a closer does not match its opener (the boundary is then unknowable).
 */
// Scratch for compoundEnd: it runs to completion synchronously, so one buffer serves every call.
const closers = new Uint8Array(MAX_DEPTH);

export const compoundEnd = (text: string, i: number): number => {
  let depth = 0;
  const n = text.length;
  let j = i;
  while (j < n) {
    const c = text.charCodeAt(j);
    if (c === QUOTE) {
      j = stringEnd(text, j);
      if (j < 0) return -1;
      continue;
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === MAX_DEPTH) return -2;
      closers[depth++] = c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (depth === 0 || closers[depth - 1] !== c) return -2;
      if (--depth === 0) return j + 1;
    }
    j++;
  }
  return -1;
};

/**
 * The end of any value starting at text[i] (no leading whitespace): compound values and strings
 * by matching, scalars up to the next delimiter. -1: the text ended inside it; -2: mismatched closer.
 */
export const valueEnd = (text: string, i: number): number => {
  const c = text.charCodeAt(i);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) return compoundEnd(text, i);
  if (c === QUOTE) return stringEnd(text, i);
  const n = text.length;
  let j = i;
  while (j < n) {
    const d = text.charCodeAt(j);
    if (d === COMMA || d === CLOSE_ARRAY || d === CLOSE_OBJECT || d === OPEN_ARRAY || d === OPEN_OBJECT || d === QUOTE || isJsonWhitespace(d)) break;
    j++;
  }
  return j;
};

const PATH_SEPARATOR = "\u0000";
export const pathKey = (path: readonly string[]): string => path.join(PATH_SEPARATOR);

const decodeKey = (text: string, start: number, end: number): string => {
  const slice = text.slice(start + 1, end - 1);
  return slice.includes("\\") ? (JSON.parse(text.slice(start, end)) as string) : slice;
};

/**
 * Replaces the values at the given paths (object keys and array indexes as strings) with JSON
 * strings, leaving every other byte untouched. A path that occurs twice (duplicate keys) is
 * replaced each time. `text` must be valid JSON (the caller parsed it already).
 */
export const rewriteJsonValues = (text: string, replacements: ReadonlyMap<string, string>): string => {
  if (replacements.size === 0) return text;
  // The containers on the way to a replaced value: only those are descended into.
  const prefixes = new Set<string>();
  for (const key of replacements.keys()) {
    const parts = key.split(PATH_SEPARATOR);
    for (let k = 1; k < parts.length; k++) prefixes.add(pathKey(parts.slice(0, k)));
  }
  const pieces: string[] = [];
  let copied = 0;
  const invalid = () => new SyntaxError("rewriteJsonValues: text is not valid JSON");

  // Walks the members of the container opening at text[i] (whose path is `here`); returns its end.
  const descend = (i: number, here: string): number => {
    const isObject = text.charCodeAt(i) === OPEN_OBJECT;
    const close = isObject ? CLOSE_OBJECT : CLOSE_ARRAY;
    const n = text.length;
    let j = skipWhitespace(text, i + 1);
    let index = 0;
    while (j < n && text.charCodeAt(j) !== close) {
      let name: string;
      if (isObject) {
        const keyEnd = text.charCodeAt(j) === QUOTE ? stringEnd(text, j) : -1;
        if (keyEnd < 0) throw invalid();
        name = decodeKey(text, j, keyEnd);
        j = skipWhitespace(text, keyEnd);
        if (text.charCodeAt(j) !== COLON) throw invalid();
        j = skipWhitespace(text, j + 1);
      } else name = String(index++);
      const path = here === "" ? name : here + PATH_SEPARATOR + name;
      const replacement = replacements.get(path);
      const c = text.charCodeAt(j);
      let end: number;
      if (replacement === undefined && (c === OPEN_OBJECT || c === OPEN_ARRAY) && prefixes.has(path)) end = descend(j, path);
      else end = valueEnd(text, j);
      if (end <= j) throw invalid();
      if (replacement !== undefined) {
        pieces.push(text.slice(copied, j), JSON.stringify(replacement));
        copied = end;
      }
      j = skipWhitespace(text, end);
      if (text.charCodeAt(j) === COMMA) j = skipWhitespace(text, j + 1);
    }
    if (j >= n) throw invalid();
    return j + 1;
  };

  const root = skipWhitespace(text, 0);
  const c = text.charCodeAt(root);
  if (c !== OPEN_OBJECT && c !== OPEN_ARRAY) return text;
  descend(root, "");
  if (pieces.length === 0) return text;
  pieces.push(text.slice(copied));
  return pieces.join("");
};
