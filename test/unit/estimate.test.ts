import { describe, expect, it } from "vitest";
import { seeded } from "../../bench/stats.ts";
import {
  calibrationOf,
  estimateWait,
  MIN_SAMPLES,
  poolSampleOf,
  waitOutcomeOf,
} from "../../core/estimate.ts";
import { runIdFor } from "../../core/identifiers.ts";
import { POOL_SAMPLE_SLOTS, WAIT_OUTCOME_SLOTS } from "../../core/ports.ts";
import type { Run, Task } from "../../core/records.ts";

const steady = (held: number, pickup = 1) => ({
  held: Array(8).fill(held),
  pickup: Array(8).fill(pickup),
  priority: Array(8).fill(5),
});
const band = (e: { expect: number; error: number } | undefined) =>
  e && [e.expect - e.error, e.expect + e.error];

describe("the expected wait of a queued task", () => {
  it("says nothing without enough recent runs", () => {
    const samples = { held: Array(MIN_SAMPLES - 1).fill(10), pickup: [1], priority: [5] };
    expect(
      estimateWait({ priority: 5, position: 1, slots: 1, held: 1, samples, random: seeded(1) }),
    ).toBeUndefined();
  });

  it("is the start alone in a pool with a free slot, and grows by a run per place in a full one", () => {
    const random = seeded(2);
    expect(
      estimateWait({ priority: 5, position: 1, slots: 2, held: 1, samples: steady(10), random }),
    ).toEqual({
      expect: 1,
      error: 0,
    });
    const [first, third] = [1, 3].map((position) =>
      band(estimateWait({ priority: 5, position, slots: 1, held: 1, samples: steady(10), random })),
    );
    // The running job's rest is up to one run (10 s), then one run per task ahead, then the start (1 s).
    expect(first?.[0]).toBeGreaterThanOrEqual(1);
    expect(first?.[1]).toBeLessThanOrEqual(11);
    expect(third?.[0]).toBeGreaterThanOrEqual(21);
    expect(third?.[1]).toBeLessThanOrEqual(31);
  });

  it("counts from how long the runs holding the slots have gone, where that is known", () => {
    const random = seeded(6);
    const samples = { ...steady(10), held: [8, 9, 10, 11, 12, 10, 10, 10] };
    const wait = (ages?: number[]) =>
      estimateWait({ position: 1, priority: 5, slots: 1, held: 1, ages, samples, random });
    // Just started: the whole of a run (8 to 12 s) is left, then the start (1 s).
    expect(band(wait([0]))).toEqual([9, 13]);
    // Ten seconds in: only the runs longer than that (11, 12 s) say what is left, 1 or 2 s, then the start.
    const late = wait([10]);
    expect(late?.expect).toBeGreaterThanOrEqual(2);
    expect(late?.expect).toBeLessThanOrEqual(3);
    expect(band(late)?.[1]).toBeLessThanOrEqual(4);
  });

  it("widens its band with a heavy tail of run times", () => {
    const random = seeded(3);
    const tail = { held: [...Array(20).fill(5), 200, 300], pickup: [1], priority: [5] };
    const narrow = estimateWait({ priority: 5, position: 4, slots: 2, held: 2, samples: steady(5), random });
    const wide = estimateWait({ priority: 5, position: 4, slots: 2, held: 2, samples: tail, random });
    expect((wide?.error ?? 0) / (narrow?.error ?? 1)).toBeGreaterThan(5);
  });

  it("counts the higher-priority work that comes while a task waits, as the pool's recent runs show it", () => {
    const random = seeded(5);
    // Half the pool's recent runs were priority 8: they come at half a busy pool's pace.
    const mixed = { ...steady(10), priority: [3, 3, 3, 3, 8, 8, 8, 8] };
    const wait = (priority: number, samples = mixed) =>
      estimateWait({ position: 3, priority, slots: 2, held: 2, samples, random })?.expect ?? 0;
    // At place 3, a priority-8 task waits as in a pool of one priority: nothing overtakes it. A priority-3
    // one waits longer by the work that comes meanwhile (one run per 10 s: about half a run of 10 s on
    // each of 2 slots per newcomer).
    expect(Math.abs(wait(8) - wait(5, steady(10)))).toBeLessThan(2);
    expect(wait(3) - wait(8)).toBeGreaterThan(3);
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
        priority: 5,
        slots,
        held,
        samples: { held: recent.map((e) => e.seconds), pickup: [0], priority: [5] },
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
    const sample = poolSampleOf({ priority: 7 }, run, new Date("2026-01-01T00:01:00.000Z"));
    expect(sample).toMatchObject({ pool: "p", held_seconds: 60, pickup_seconds: 1.3, priority: 7 });
    expect(sample?.slot).toBeGreaterThanOrEqual(0);
    expect(sample?.slot).toBeLessThan(POOL_SAMPLE_SLOTS);
    expect(
      poolSampleOf({ priority: 7 }, { ...run, run_id: `${run.run_id.slice(0, -1)}2` }, new Date())?.slot,
    ).not.toBe(sample?.slot);
    expect(poolSampleOf({ priority: 7 }, { ...run, start_time: undefined }, new Date())).toBeUndefined();
  });
});

describe("a task's wait outcome", () => {
  const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  const task = {
    uuid,
    create_time: "2026-01-01T00:00:00.000Z",
    predicted_wait: { expect: 20, error: 5 },
  } as Task;
  const firstRun = {
    run_id: runIdFor(uuid, 1),
    pool: "p",
    create_time: "2026-01-01T00:00:20.000Z",
    start_time: "2026-01-01T00:00:21.440Z",
  } as Run;

  it("sets the wait its first run had, from the task's creation to the run's start, beside the prediction", () => {
    const outcome = waitOutcomeOf(task, firstRun);
    expect(outcome).toMatchObject({ pool: "p", expect: 20, error: 5, actual: 21.4 });
    expect(outcome?.slot).toBeGreaterThanOrEqual(0);
    expect(outcome?.slot).toBeLessThan(WAIT_OUTCOME_SLOTS);
  });

  it("is the wait alone for a task predicted nothing, and nothing for a later run or one never started", () => {
    const unpredicted = waitOutcomeOf({ ...task, predicted_wait: undefined }, firstRun);
    expect(unpredicted).toEqual({ pool: "p", slot: expect.any(Number), actual: 21.4 });
    expect(waitOutcomeOf(task, { ...firstRun, run_id: runIdFor(uuid, 2) })).toBeUndefined();
    expect(waitOutcomeOf(task, { ...firstRun, start_time: undefined })).toBeUndefined();
  });
});

describe("a pool's calibration", () => {
  it("gives the share of waits inside their bands and the mean distance from the expected wait", () => {
    const calibration = calibrationOf([
      { expect: 10, error: 2, actual: 11 },
      { expect: 10, error: 2, actual: 12 },
      { expect: 10, error: 2, actual: 4 },
      { expect: 30, error: 10, actual: 25 },
      // A wait nobody predicted tells nothing of the predictions.
      { actual: 90 },
    ]);
    expect(calibration).toEqual({ coverage: 0.75, mean_abs_error_s: 3.5, mean_wait_s: 13, samples: 4 });
    expect(calibrationOf([])).toEqual({
      coverage: null,
      mean_abs_error_s: null,
      mean_wait_s: null,
      samples: 0,
    });
  });
});
