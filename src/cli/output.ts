// Output for CLI commands: JSON for scripts (--json), aligned tables for people.
export const printJson = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

const cell = (v: unknown): string => (v === null || v === undefined ? "-" : typeof v === "object" ? JSON.stringify(v) : String(v));

export const renderTable = (rows: Record<string, unknown>[], columns: string[]): string => {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join("\n") + "\n";
};

export const printTable = (rows: Record<string, unknown>[], columns: string[]) => process.stdout.write(renderTable(rows, columns));

/** key: value lines for one object. */
export const printRecord = (record: Record<string, unknown>) => {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [k, v] of Object.entries(record)) process.stdout.write(`${k.padEnd(width)}  ${cell(v)}\n`);
};
