import { describe, expect, it } from "vitest";
import { estimateWait, MIN_SAMPLES, poolSampleOf } from "../../core/estimate.ts";
import { POOL_SAMPLE_SLOTS } from "../../core/ports.ts";
import type { Run } from "../../core/records.ts";

/** A seeded generator (mulberry32): the same draws every run. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const steady = (held: number, pickup = 1) => ({ held: Array(8).fill(held), pickup: Array(8).fill(pickup) });
const band = (e: { expect: number; error: number } | undefined) =>
  e && [e.expect - e.error, e.expect + e.error];

describe("the expected wait of a queued task", () => {
  it("says nothing without enough recent runs", () => {
    const samples = { held: Array(MIN_SAMPLES - 1).fill(10), pickup: [1] };
    expect(estimateWait({ position: 1, slots: 1, held: 1, samples, random: seeded(1) })).toBeUndefined();
  });

  it("is the start alone in a pool with a free slot, and grows by a run per place in a full one", () => {
    const random = seeded(2);
    expect(estimateWait({ position: 1, slots: 2, held: 1, samples: steady(10), random })).toEqual({
      expect: 1,
      error: 0,
    });
    const [first, third] = [1, 3].map((position) =>
      band(estimateWait({ position, slots: 1, held: 1, samples: steady(10), random })),
    );
    // The running job's rest is up to one run (10 s), then one run per task ahead, then the start (1 s).
    expect(first?.[0]).toBeGreaterThanOrEqual(1);
    expect(first?.[1]).toBeLessThanOrEqual(11);
    expect(third?.[0]).toBeGreaterThanOrEqual(21);
    expect(third?.[1]).toBeLessThanOrEqual(31);
  });

  it("widens its band with a heavy tail of run times", () => {
    const random = seeded(3);
    const tail = { held: [...Array(20).fill(5), 200, 300], pickup: [1] };
    const narrow = estimateWait({ position: 4, slots: 2, held: 2, samples: steady(5), random });
    const wide = estimateWait({ position: 4, slots: 2, held: 2, samples: tail, random });
    expect((wide?.error ?? 0) / (narrow?.error ?? 1)).toBeGreaterThan(5);
  });

  it("holds the real wait in its band about 4 times in 5, in a simulated busy pool with heavy-tailed runs", () => {
    // A pool of 3 slots, first come first served, lognormal run times, arrivals at 95 % of capacity.
    const random = seeded(4);
    const runTime = () => {
      const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      return 20 * Math.exp(normal);
    };
    const slots = 3;
    const meanRun = 20 * Math.exp(0.5);
    const frees = Array(slots).fill(0) as number[];
    const ended: { at: number; seconds: number }[] = [];
    const starts: number[] = [];
    let arrival = 0;
    let covered = 0;
    let judged = 0;
    for (let job = 0; job < 4000; job++) {
      arrival += -Math.log(1 - random()) * (meanRun / slots / 0.95);
      const slot = frees.indexOf(Math.min(...frees));
      const start = Math.max(arrival, frees[slot] as number);
      const seconds = runTime();
      // What the pool knew when the job arrived: slots held, jobs ahead, the last 24 runs that had ended.
      const held = frees.filter((free) => free > arrival).length;
      const ahead = starts.filter((s) => s > arrival).length;
      const recent = ended.filter((e) => e.at <= arrival).slice(-POOL_SAMPLE_SLOTS);
      frees[slot] = start + seconds;
      starts.push(start);
      ended.push({ at: start + seconds, seconds });
      ended.sort((a, b) => a.at - b.at);
      if (job < 500 || job % 5 !== 0 || held < slots) continue;
      const estimate = estimateWait({
        position: ahead + 1,
        slots,
        held,
        samples: { held: recent.map((e) => e.seconds), pickup: [0] },
        random,
      });
      if (!estimate) continue;
      judged++;
      const wait = start - arrival;
      if (Math.abs(wait - estimate.expect) <= estimate.error + 0.05) covered++;
    }
    expect(judged).toBeGreaterThan(200);
    expect(covered / judged).toBeGreaterThan(0.7);
    expect(covered / judged).toBeLessThan(0.95);
  });
});

describe("a run's place in its pool's sample", () => {
  it("keeps how long it held its slot and took to start, in a slot its run id picks", () => {
    const run = {
      run_id: "0f8fad5b-d9cb-469f-a165-70867728950e-r000001",
      pool: "p",
      create_time: "2026-01-01T00:00:00.000Z",
      start_time: "2026-01-01T00:00:01.250Z",
    } as Run;
    const sample = poolSampleOf(run, new Date("2026-01-01T00:01:00.000Z"));
    expect(sample).toMatchObject({ pool: "p", held_seconds: 60, pickup_seconds: 1.3 });
    expect(sample?.slot).toBeGreaterThanOrEqual(0);
    expect(sample?.slot).toBeLessThan(POOL_SAMPLE_SLOTS);
    expect(poolSampleOf({ ...run, run_id: `${run.run_id.slice(0, -1)}2` }, new Date())?.slot).not.toBe(
      sample?.slot,
    );
    expect(poolSampleOf({ ...run, start_time: undefined }, new Date())).toBeUndefined();
  });
});
