/**
 * How long a queued task should wait: until a slot of its pool frees for it, then its start. A Monte Carlo
 * over the pool's recent runs (its sample: how long each held its slot, how long each took to start), so
 * that heavy tails show in the band: the wait is expected within `expect ± error`, the 10th to the 90th
 * percentile of the simulated waits.
 */
import type { PoolConfig } from "./config.ts";
import type { Deps } from "./deps.ts";
import { POOL_SAMPLE_SLOTS, type PoolSample, type PoolSamples, type PoolState } from "./ports.ts";
import type { Run } from "./records.ts";

/** Fewer recent runs than this say too little: no estimate. */
export const MIN_SAMPLES = 5;
/** Simulated rounds per estimate. */
const ROUNDS = 400;
const BAND = { low: 0.1, high: 0.9 } as const;

export interface WaitEstimate {
  /** Seconds; the band is [expect − error, expect + error]. */
  expect: number;
  error: number;
}

export interface WaitInputs {
  /** The task's place in the admission order: 1 is admitted next. */
  position: number;
  /** The pool's max_concurrency, and its slots held now. */
  slots: number;
  held: number;
  samples: PoolSamples;
  /** Uniform in [0, 1). */
  random: () => number;
}

/**
 * The wait of the task at `position`: in each round, every held slot frees after the rest of a recent run
 * (see residualDraw: how long it has run is not known) and every free slot at once; the tasks
 * ahead take the slots as they free, each for a recent run's time, and the task starts a recent start time
 * after its own slot frees. Undefined without enough history.
 */
export function estimateWait(inputs: WaitInputs): WaitEstimate | undefined {
  const { position, slots, samples, random } = inputs;
  if (samples.held.length < MIN_SAMPLES || samples.pickup.length === 0 || slots < 1) return undefined;
  const draw = (values: number[]) => values[Math.floor(random() * values.length)] as number;
  const held = Math.min(inputs.held, slots);
  const waits: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Each round runs on a resample of the recent runs (a bootstrap), so that the band also holds how
    // little a few dozen runs say of the whole.
    const runs = samples.held.map(() => draw(samples.held));
    const residual = residualDraw(runs, random);
    const frees = new MinHeap(Array.from({ length: slots }, (_, i) => (i < held ? residual() : 0)));
    let slotFree = 0;
    for (let taken = 1; taken <= position; taken++) {
      slotFree = frees.pop();
      frees.push(slotFree + draw(runs));
    }
    waits.push(slotFree + draw(samples.pickup));
  }
  waits.sort((a, b) => a - b);
  const at = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] as number;
  const [low, high] = [at(BAND.low), at(BAND.high)];
  const tenths = (seconds: number) => Math.round(seconds * 10) / 10;
  return { expect: tenths((low + high) / 2), error: tenths((high - low) / 2) };
}

/**
 * The wait of the task at `position` in a pool whose counters are `state`, from the pool's sample of recent
 * runs (one read). Undefined without enough history.
 */
export async function expectedWaitIn(
  deps: Pick<Deps, "counters" | "random">,
  pool: PoolConfig,
  state: Pick<PoolState, "active">,
  position: number,
): Promise<WaitEstimate | undefined> {
  return estimateWait({
    position,
    slots: pool.max_concurrency,
    held: state.active,
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

/**
 * A run that ended, as its pool's sample keeps it: how long it held its slot (dispatch to end) and took to
 * start (dispatch to running), in the slot its run id picks.
 */
export function poolSampleOf(run: Run, endedAt: Date): PoolSample | undefined {
  if (!run.start_time) return undefined;
  const dispatched = Date.parse(run.create_time);
  const seconds = (ms: number) => Math.max(0, Math.round(ms / 100) / 10);
  let hash = 0;
  for (const char of run.run_id) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return {
    pool: run.pool,
    slot: hash % POOL_SAMPLE_SLOTS,
    held_seconds: seconds(endedAt.getTime() - dispatched),
    pickup_seconds: seconds(Date.parse(run.start_time) - dispatched),
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
