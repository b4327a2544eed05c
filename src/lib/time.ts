// Time source. Services take a Clock so tests can move time (expiry is exact to the millisecond).
export type Clock = { now(): Date };
export const systemClock: Clock = { now: () => new Date() };

/** A clock tests can set and advance. */
export const manualClock = (start: Date | string = "2026-01-01T00:00:00Z") => {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set: (t: Date | string) => {
      current = new Date(t).getTime();
    },
    advance: (ms: number) => {
      current += ms;
    },
  };
};
