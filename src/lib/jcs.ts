// RFC 8785 JSON Canonicalization Scheme: exactly one JSON text per value, so hashes and signatures over audit
// entries can be recomputed byte for byte by any other conforming implementation.

// In a u-flag regex a paired surrogate is one code point, so this matches only lone surrogates.

/**
 * Canonical JSON text of `value`. Strings and numbers are serialised exactly as JSON.stringify does (RFC 8785
 * adopts ECMAScript's rules), object members are sorted by UTF-16 code units, and there is no whitespace.
 * Throws TypeError for anything that is not I-JSON data (RFC 8785 §3.1): non-finite numbers, BigInt, functions,
 * symbols, lone surrogates, cycles, non-plain objects (Map, class instances...) and a top-level undefined.
 * Like JSON.stringify, toJSON() is honoured (Date), undefined members are omitted and undefined array items are null.
 */
export const canonicalize = (value: unknown): string => {
  const out = serialize(value, "", []);
  if (out === undefined) throw new TypeError("canonicalize: undefined is not a JSON value");
  return out;
};

const quote = (s: string, what: string): string => {
  // JSON.stringify would escape a lone surrogate as \udXXX; I-JSON forbids it and other implementations
  // would turn it into U+FFFD, so the "canonical" bytes would differ across implementations.
  if (!s.isWellFormed()) throw new TypeError(`canonicalize: ${what} contains a lone surrogate`);
  return JSON.stringify(s);
};

// Object keys repeat across entries (the same few dozen names); quoting each once is measurably cheaper
// when canonicalising a million audit entries. Bounded so odd inputs cannot grow it without limit.
const quotedKeys = new Map<string, string>();
const quoteKey = (k: string): string => {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = quote(k, "an object key");
    if (quotedKeys.size < 10_000) quotedKeys.set(k, q);
  }
  return q;
};

/** Returns undefined for a value JSON.stringify would omit (only `undefined` itself here). */
const serialize = (input: unknown, key: string, ancestors: object[]): string | undefined => {
  let value = input;
  if (typeof value === "object" && value !== null && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    value = (value as { toJSON: (k: string) => unknown }).toJSON(key);
  }
  // Boxed primitives serialise as their primitive, as in JSON.stringify.
  if (value instanceof Number || value instanceof String || value instanceof Boolean) value = value.valueOf();

  switch (typeof value) {
    case "undefined":
      return undefined;
    case "string":
      return quote(value, "a string");
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalize: ${value} is not a JSON number`);
      // ECMAScript Number::toString, which RFC 8785 §3.2.2.3 mandates; also maps -0 to "0".
      return JSON.stringify(value);
    case "bigint":
      throw new TypeError("canonicalize: BigInt is not a JSON value");
    case "function":
    case "symbol":
      throw new TypeError(`canonicalize: a ${typeof value} is not a JSON value`);
  }

  if (value === null) return "null";
  const obj = value as object;
  if (ancestors.includes(obj)) throw new TypeError("canonicalize: cyclic structure");
  ancestors.push(obj);
  try {
    if (Array.isArray(obj)) {
      const items: string[] = [];
      for (let i = 0; i < obj.length; i++) items.push(serialize(obj[i], String(i), ancestors) ?? "null");
      return `[${items.join(",")}]`;
    }
    const proto = Object.getPrototypeOf(obj) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new TypeError(`canonicalize: ${name} is not plain JSON data`);
    }
    const record = obj as Record<string, unknown>;
    // Default sort compares UTF-16 code units, which is exactly RFC 8785 §3.2.3.
    const members: string[] = [];
    for (const k of Object.keys(record).sort()) {
      const v = serialize(record[k], k, ancestors);
      if (v !== undefined) members.push(`${quoteKey(k)}:${v}`);
    }
    return `{${members.join(",")}}`;
  } finally {
    ancestors.pop();
  }
};
