// Runs after every test file: no log line any test app wrote may contain a credential.
import { afterAll, expect } from "vitest";
import { leakedLines } from "../helpers/secret-scan.ts";

afterAll(() => {
  const leaked = leakedLines();
  expect(leaked.map((l) => l.slice(0, 300)), "log lines containing a password, key or token").toEqual([]);
});
