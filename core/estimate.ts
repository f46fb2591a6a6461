/**
 * How long a queued task should wait: until a slot of its pool frees for it, then its start. A Monte Carlo
 * over the pool's recent runs (its sample: how long each held its slot, how long each took to start, at
 * what priority), so that heavy tails show in the band. The wait is expected within `expect ± error`: the
 * median of the simulated waits, give or take enough to reach both their 10th and 90th percentiles (a
 * heavy tail makes the band reach below the 10th).
 */
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { runIdFor } from "./identifiers.ts";
import {
  POOL_SAMPLE_SLOTS,
  type PoolSample,
  type PoolSamples,
  type PoolState,
  WAIT_OUTCOME_SLOTS,
  type WaitOutcome,
  type WaitOutcomeSample,
} from "./ports.ts";
import type { Run, Task } from "./records.ts";

/** Fewer recent runs than this say too little: no estimate. */
export const MIN_SAMPLES = 5;
/** Simulated rounds per estimate. */
const ROUNDS = 400;
/** Slots a round hands out at most before it gives up on the task (higher-priority work never ending). */
const MAX_TAKES = 5000;
const BAND = { low: 0.1, high: 0.9 } as const;

export interface WaitEstimate {
  /** Seconds; the band is [expect − error, expect + error]. */
  expect: number;
  error: number;
}

export interface WaitInputs {
  /** The task's place in the admission order: 1 is admitted next. */
  position: number;
  /** Its priority: tasks of a higher one that come while it waits go before it. */
  priority: number;
  /** The pool's max_concurrency, and its slots held now. */
  slots: number;
  held: number;
  /** How long (seconds) the runs holding slots have held them, as far as known (see PoolState.heldSince). */
  ages?: number[];
  samples: PoolSamples;
  /** Uniform in [0, 1). */
  random: () => number;
}

/**
 * The wait of the task at `position`: in each round, every held slot frees after the rest of a recent run
 * longer than its age (where that is not known, see residualDraw) and every free slot at once. As slots free, they
 * go to the tasks ahead and to those of a higher priority that have come meanwhile (see jumpRate), each
 * for a recent run's time, and the task starts a recent start time after it takes one. Undefined without
 * enough history.
 */
export function estimateWait(inputs: WaitInputs): WaitEstimate | undefined {
  const { position, priority, slots, samples, random, ages = [] } = inputs;
  if (samples.held.length < MIN_SAMPLES || samples.pickup.length === 0 || slots < 1) return undefined;
  const draw = (values: number[]) => values[Math.floor(random() * values.length)] as number;
  const exponential = (rate: number) => -Math.log(1 - random()) / rate;
  const held = Math.min(inputs.held, slots);
  const waits: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Each round runs on a resample of the recent runs (a bootstrap), so that the band also holds how
    // little a few dozen runs say of the whole.
    const runs = samples.held.map(() => draw(samples.held));
    const rate = jumpRate(
      priority,
      slots,
      runs,
      samples.priority.map(() => draw(samples.priority)),
    );
    const residual = residualDraw(runs, random);
    const sorted = [...runs].sort((a, b) => a - b);
    const rest = (age: number | undefined) => {
      const longer = age === undefined ? sorted.length : firstAbove(sorted, age);
      if (longer === sorted.length) return residual();
      return (sorted[longer + Math.floor(random() * (sorted.length - longer))] as number) - (age as number);
    };
    const frees = new MinHeap(Array.from({ length: slots }, (_, i) => (i < held ? rest(ages[i]) : 0)));
    let [ahead, jumpers, nextJumper] = [position - 1, 0, rate > 0 ? exponential(rate) : Infinity];
    let slotFree = frees.pop();
    for (let takes = 0; takes < MAX_TAKES; takes++) {
      for (; nextJumper <= slotFree; nextJumper += exponential(rate)) jumpers++;
      if (ahead + jumpers === 0) break;
      if (jumpers > 0) jumpers--;
      else ahead--;
      frees.push(slotFree + draw(runs));
      slotFree = frees.pop();
    }
    waits.push(slotFree + draw(samples.pickup));
  }
  waits.sort((a, b) => a - b);
  const at = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] as number;
  const [low, median, high] = [at(BAND.low), at(0.5), at(BAND.high)];
  const tenths = (seconds: number) => Math.round(seconds * 10) / 10;
  return { expect: tenths(median), error: tenths(Math.max(median - low, high - median)) };
}

/** The index of the first of `sorted` (ascending) above `value`; its length if none is. */
function firstAbove(sorted: number[], value: number): number {
  let [low, high] = [0, sorted.length];
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((sorted[middle] as number) > value) high = middle;
    else low = middle + 1;
  }
  return low;
}

/**
 * How often (per second) tasks of a higher priority than `priority` come to the pool: their share of its
 * recent runs, times what a busy pool finishes. It only tells while the pool is busy, which is when it
 * matters: a task that finds a free slot takes it before any newcomer.
 */
function jumpRate(priority: number, slots: number, runs: number[], priorities: number[]): number {
  if (priorities.length === 0) return 0;
  const meanRun = runs.reduce((sum, seconds) => sum + seconds, 0) / runs.length;
  if (meanRun <= 0) return 0;
  const higher = priorities.filter((p) => p > priority).length / priorities.length;
  return (higher * slots) / meanRun;
}

/**
 * The wait of a task at `position` and of `priority` in a pool whose counters are `state`, from the pool's
 * sample of recent runs (one read). Undefined without enough history.
 */
export async function expectedWaitIn(
  deps: Pick<Deps, "counters" | "random" | "clock">,
  pool: PoolConfig,
  state: Pick<PoolState, "active" | "heldSince">,
  place: { position: number; priority: number },
): Promise<WaitEstimate | undefined> {
  const now = deps.clock.now().getTime();
  // The newest of the times: one a lost release left behind would be the oldest.
  const newest = [...state.heldSince].sort((a, b) => b - a).slice(0, state.active);
  return estimateWait({
    ...place,
    slots: pool.max_concurrency,
    held: state.active,
    ages: newest.map((since) => Math.max(0, (now - since) / 1000)),
    samples: await deps.counters.poolSamples(pool.name),
    random: deps.random,
  });
}

/**
 * The rest of a run found holding a slot at a random moment: a run seen at a random moment is more likely a
 * long one (picked in proportion to its length), and is a uniform share of the way through it.
 */
function residualDraw(held: number[], random: () => number): () => number {
  const cumulative: number[] = [];
  let total = 0;
  for (const seconds of held) {
    total += seconds;
    cumulative.push(total);
  }
  if (total === 0) return () => 0;
  return () => {
    const target = random() * total;
    const picked = held[cumulative.findIndex((upTo) => upTo > target)] ?? (held.at(-1) as number);
    return picked * random();
  };
}

/** Seconds to the tenth, from milliseconds; never negative. */
const tenthsOfSecond = (ms: number) => Math.max(0, Math.round(ms / 100) / 10);

/**
 * The slot of a bounded ring that a run takes: its id's hash, so that no read is needed to pick it. Two
 * runs may share a slot: the later one's sample is kept.
 */
export function ringSlot(runId: string, slots: number): number {
  let hash = 0;
  for (const char of runId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % slots;
}

/**
 * A run that ended, as its pool's sample keeps it: how long it held its slot (dispatch to end) and took to
 * start (dispatch to running).
 */
export function poolSampleOf(task: Pick<Task, "priority">, run: Run, endedAt: Date): PoolSample | undefined {
  if (!run.start_time) return undefined;
  const dispatched = Date.parse(run.create_time);
  return {
    pool: run.pool,
    slot: ringSlot(run.run_id, POOL_SAMPLE_SLOTS),
    held_seconds: tenthsOfSecond(endedAt.getTime() - dispatched),
    pickup_seconds: tenthsOfSecond(Date.parse(run.start_time) - dispatched),
    priority: task.priority,
  };
}

/**
 * A task's first run, ending after it started: the wait it had (create_time to the run's start_time),
 * beside the one its submission predicted, if any (the SLAs read the waits, the calibration the
 * predictions). Undefined for any other run.
 */
export function waitOutcomeOf(task: Task, run: Run): WaitOutcomeSample | undefined {
  if (!run.start_time || run.run_id !== runIdFor(task.uuid, 1)) return undefined;
  return {
    pool: run.pool,
    slot: ringSlot(run.run_id, WAIT_OUTCOME_SLOTS),
    ...task.predicted_wait,
    actual: tenthsOfSecond(Date.parse(run.start_time) - Date.parse(task.create_time)),
  };
}

/**
 * How good a pool's recent predictions were: the share of waits inside their band, the mean distance from
 * the expected wait and the mean wait (seconds), over `samples` tasks. Nulls without any.
 */
export function calibrationOf(all: WaitOutcome[]) {
  const outcomes = all.filter(
    (o): o is Required<WaitOutcome> => o.expect !== undefined && o.error !== undefined,
  );
  const n = outcomes.length;
  const mean = (of: (o: Required<WaitOutcome>) => number) =>
    n === 0 ? null : Math.round((outcomes.reduce((sum, o) => sum + of(o), 0) / n) * 1000) / 1000;
  return {
    coverage: mean((o) => (Math.abs(o.actual - o.expect) <= o.error ? 1 : 0)),
    mean_abs_error_s: mean((o) => Math.abs(o.actual - o.expect)),
    mean_wait_s: mean((o) => o.actual),
    samples: n,
  };
}

/** The smallest of a bag of numbers, and the next, as they come and go. */
class MinHeap {
  private readonly items: number[] = [];

  constructor(values: number[]) {
    for (const value of values) this.push(value);
  }

  push(value: number): void {
    const items = this.items;
    items.push(value);
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as number) <= value) break;
      [items[i], items[parent]] = [items[parent] as number, value];
      i = parent;
    }
  }

  /** The smallest, removed. */
  pop(): number {
    const items = this.items;
    const top = items[0] as number;
    const last = items.pop() as number;
    if (items.length === 0) return top;
    items[0] = last;
    for (let i = 0; ; ) {
      const [left, right] = [2 * i + 1, 2 * i + 2];
      let smallest = i;
      if (left < items.length && (items[left] as number) < (items[smallest] as number)) smallest = left;
      if (right < items.length && (items[right] as number) < (items[smallest] as number)) smallest = right;
      if (smallest === i) return top;
      [items[i], items[smallest]] = [items[smallest] as number, items[i] as number];
      i = smallest;
    }
  }
}
