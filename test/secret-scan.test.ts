// The leak scanner itself must be able to fail: it finds our credential shapes and remembered secrets.
import { describe, expect, it } from "vitest";
import { findLeaks } from "./helpers/secret-scan.ts";

describe("secret scan", () => {
  const key = `pc_${"A".repeat(43)}`;
  const refresh = `pcr_${"b".repeat(43)}`;
  const jwt = `eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4eXoifQ.${"c".repeat(86)}`;
  it("flags credential shapes and known secrets, and nothing else", () => {
    const lines = [
      `{"msg":"ok","key":"${key}"}`,
      `{"msg":"refresh ${refresh}"}`,
      `{"token":"${jwt}"}`,
      `{"msg":"user typed correct-horse-battery"}`,
      `{"msg":"request completed","url":"/auth/keys","prefix":"pc_AAAAAAAA"}`,
    ];
    expect(findLeaks(lines, ["correct-horse-battery"])).toEqual(lines.slice(0, 4));
  });
});
