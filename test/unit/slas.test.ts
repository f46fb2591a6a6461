import { describe, expect, it } from "vitest";
import { percentileOf, slaOf } from "../../core/slas.ts";
import { parseSchedulerConfig } from "../../runtime/scheduler-config.ts";

const [withSla, without] = parseSchedulerConfig(`
pools:
  - { name: fast, tool: claude, account: a, max_concurrency: 1, sla: { max_wait_seconds: 10, percentile: 80 } }
  - { name: free, tool: claude, account: a, max_concurrency: 1 }
`).pools;
const waits = (...actual: number[]) => actual.map((a) => ({ actual: a }));

describe("pool SLAs", () => {
  it("take the percentile by nearest rank", () => {
    expect(percentileOf([5, 1, 4, 2, 3], 80)).toBe(4);
    expect(percentileOf([5, 1, 4, 2, 3], 81)).toBe(5);
    expect(percentileOf([7], 99)).toBe(7);
    expect(percentileOf([], 90)).toBeUndefined();
  });

  it("are met while the recent waits at the percentile are within the target, predicted or not", () => {
    if (!withSla || !without) throw new Error("the pools");
    expect(withSla.sla).toEqual({ max_wait_seconds: 10, percentile: 80 });
    const recent = [...waits(1, 2, 3, 9), { expect: 4, error: 1, actual: 30 }];
    expect(slaOf(withSla, recent)).toEqual({
      pool: "fast",
      sla: { max_wait_seconds: 10, percentile: 80 },
      measured_wait_s: 9,
      samples: 5,
      met: true,
    });
    expect(slaOf(withSla, [...recent, ...waits(12)])).toMatchObject({ measured_wait_s: 12, met: false });
    expect(slaOf(withSla, [])).toMatchObject({ measured_wait_s: null, samples: 0, met: null });
    expect(slaOf(without, recent)).toEqual({
      pool: "free",
      sla: null,
      measured_wait_s: null,
      samples: 0,
      met: null,
    });
  });
});
