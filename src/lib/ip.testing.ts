// Test helpers: canonical text of an address given as a number, via ipaddr.js (an independent
// implementation, so tests do not check our formatting against itself).
import ipaddr from "ipaddr.js";

export const v4Text = (v: bigint): string => {
  const n = Number(v);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
};

export const v6Text = (v: bigint): string => {
  const parts: number[] = [];
  for (let k = 7; k >= 0; k--) parts.push(Number((v >> BigInt(k * 16)) & 0xffffn));
  return new ipaddr.IPv6(parts).toRFC5952String();
};
