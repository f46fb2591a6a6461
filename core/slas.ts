/**
 * Pool SLAs: a pool may promise that a share of its tasks (`percentile`) start within `max_wait_seconds`
 * of their submission. The measure is the pool's record of its last 48 first runs' waits (the same one
 * the wait estimates' calibration reads, written in the settle transaction), at that percentile
 * (nearest rank): no scan of past runs.
 */
import { type Principal, requireScope } from "./auth.ts";
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import type { WaitOutcome } from "./ports.ts";

export interface SlaView {
  pool: string;
  /** Null: the pool promises nothing. */
  sla: { max_wait_seconds: number; percentile: number } | null;
  /** The recent waits at the SLA's percentile (seconds); null without an SLA or any recent wait. */
  measured_wait_s: number | null;
  samples: number;
  /** Whether the measure is within the target; null when there is nothing to tell. */
  met: boolean | null;
}

/** The value at a percentile of some numbers, by nearest rank; undefined for none. */
export function percentileOf(values: number[], percentile: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((percentile / 100) * sorted.length) - 1)];
}

/** A pool's SLA against its recent waits. */
export function slaOf(pool: PoolConfig, outcomes: WaitOutcome[]): SlaView {
  const { sla } = pool;
  const measured = sla
    ? percentileOf(
        outcomes.map((o) => o.actual),
        sla.percentile,
      )
    : undefined;
  return {
    pool: pool.name,
    sla: sla ?? null,
    measured_wait_s: measured ?? null,
    samples: sla ? outcomes.length : 0,
    met: sla && measured !== undefined ? measured <= sla.max_wait_seconds : null,
  };
}

/** Every pool's SLA, measured now; one read per pool that has one. */
export const measureSlas = (deps: Pick<Deps, "config" | "counters">): Promise<SlaView[]> =>
  Promise.all(
    deps.config.pools.map(async (pool) =>
      slaOf(pool, pool.sla ? await deps.counters.waitOutcomes(pool.name) : []),
    ),
  );

/** GET /v2/slas. */
export async function listSlas(
  deps: Pick<Deps, "config" | "counters">,
  principal: Principal,
): Promise<SlaView[]> {
  requireScope(principal, "tasks:read");
  return measureSlas(deps);
}
