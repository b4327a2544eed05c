// Output of `portcullis config show`: the effective value and source of every setting,
// with secrets masked in both the text and JSON forms so the output is safe to paste into a ticket.
import { describeSource, type LoadedConfig } from "./load.ts";
import { CONFIG_LEAVES, maskValue } from "./schema.ts";

export interface RenderOptions {
  json: boolean;
}

const UNSET = "(unset)";

export function renderConfig(loaded: LoadedConfig, opts: RenderOptions): string {
  const rows = [...CONFIG_LEAVES.keys()].map((path) => {
    const source = loaded.sources[path];
    return {
      path,
      value: maskValue(path, valueAt(loaded.config, path)),
      source: source ? describeSource(source) : "default",
    };
  });

  if (opts.json) {
    const config: Record<string, unknown> = {};
    const sources: Record<string, string> = {};
    for (const row of rows) {
      // null rather than a "(unset)" string, so JSON consumers cannot mistake it for a value.
      setPath(config, row.path, row.value === undefined ? null : row.value);
      sources[row.path] = row.source;
    }
    return `${JSON.stringify({ config, sources }, null, 2)}\n`;
  }

  const shown = rows.map((row) => ({ ...row, text: formatValue(row.value) }));
  const pathWidth = Math.max(...shown.map((row) => row.path.length));
  const valueWidth = Math.max(...shown.map((row) => row.text.length));
  return shown
    .map((row) => `${row.path.padEnd(pathWidth)}  ${row.text.padEnd(valueWidth)}  (${row.source})`)
    .map((line) => `${line.trimEnd()}\n`)
    .join("");
}

function formatValue(value: unknown): string {
  if (value === undefined || value === null) return UNSET;
  if (typeof value === "string") {
    // Quote anything that would be ambiguous or break the one-line-per-setting layout.
    const plain = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) && value !== UNSET;
    return plain ? value : JSON.stringify(value);
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value) ?? String(value);
}

function valueAt(config: unknown, path: string): unknown {
  let node: unknown = config;
  for (const part of path.split(".")) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1] as string] = value;
}
