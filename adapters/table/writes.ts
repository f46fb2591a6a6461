/**
 * The transaction compiler: a StateChange (core/ports.ts) as the writes both stores apply atomically, in
 * the order whose first failed condition names the conflict.
 */

import { tenantScope } from "../../core/budgets.ts";
import { ConflictError } from "../../core/errors.ts";
import type {
  BudgetClaim,
  CommitConflictReason,
  KeyOpenChange,
  PoolSample,
  SpendChange,
  StateChange,
  WaitOutcomeSample,
} from "../../core/ports.ts";
import {
  compact,
  concurrencyKeyKey,
  costAttribute,
  costSamplesKey,
  eventLogItem,
  fairRoundAttribute,
  type Item,
  idempotencyKey,
  type Key,
  keyOpenTasksKey,
  poolKey,
  poolSamplesKey,
  queuedCountKey,
  queuedInPoolAttribute,
  runItem,
  sampleAttribute,
  scopeKey,
  spendKey,
  taskItem,
  waitOutcomeAttribute,
  waitOutcomesKey,
} from "./keys.ts";

/**
 * Counter attributes: slots held (pools, concurrency keys), tasks waiting in `queued` (pools, tenants),
 * tasks waiting for a busy key (concurrency keys), a key's open tasks and open exclusive ones, and a daily
 * budget's committed spend or a tenant's usage (core/budgets.ts).
 */
export type Counter =
  | "active"
  | "queued"
  | "waiting"
  | "open"
  | "exclusive"
  | "committed_usd"
  | "committed_tokens"
  | "usd"
  | "tokens"
  | "runs"
  | `queued@${string}`;

/** The conditions of a counter write; all must hold. */
export interface CountConditions {
  /** Each of these counters is below its limit before the write. */
  below?: { counter: Counter; limit: number }[];
  /** The item is not paused (`paused_until`) past this time. */
  notPausedAfter?: string;
  /** This counter is 0. */
  zero?: Counter;
  /** This counter is at least the limit before the write. */
  atLeast?: { counter: Counter; limit: number };
}

/**
 * One write of a StateChange. `put` writes a whole item if the stored version is `expectVersion` (absent:
 * the item must not exist); `count` adds to counters of an item (a missing counter is 0), if `when` holds.
 */
export type Write =
  | { type: "put"; item: Item & Key; expectVersion?: number; conflict: CommitConflictReason }
  | {
      type: "count";
      key: Key;
      add: Partial<Record<Counter, number>>;
      /** Attributes set outright in the same write. */
      set?: Record<string, number>;
      when?: CountConditions;
      conflict?: Exclude<CommitConflictReason, "task" | "run" | "idempotency" | "template">;
      /** A slot's dispatch time (epoch ms) into or out of the item's set of held slots' times. */
      heldSince?: { add: number } | { remove: number };
    }
  | { type: "append"; item: Item & Key }
  /** Sets attributes of an item (made if missing), unconditionally. */
  | { type: "set"; key: Key; values: Record<string, number | number[]> };

/** What a write's failed condition means; none for a write without conditions, which never fails a change. */
export const conflictOf = (w: Write): CommitConflictReason | undefined =>
  w.type === "append" || w.type === "set" || (w.type === "count" && !w.when) ? undefined : w.conflict;

export const keyOfWrite = (write: Write): Key => ("item" in write ? write.item : write.key);

/** A run's times into its slot of its pool's sample. */
const sampleWrite = ({ pool, slot, held_seconds, pickup_seconds, priority }: PoolSample): Write => ({
  type: "set",
  key: poolSamplesKey(pool),
  values: {
    [sampleAttribute("held", slot)]: held_seconds,
    [sampleAttribute("pickup", slot)]: pickup_seconds,
    [sampleAttribute("priority", slot)]: priority,
  },
});

/** A task's predicted and actual wait into its slot of its pool's wait outcomes. */
const waitOutcomeWrite = ({ pool, slot, expect, error, actual }: WaitOutcomeSample): Write => ({
  type: "set",
  key: waitOutcomesKey(pool),
  values: {
    [waitOutcomeAttribute(slot)]:
      expect === undefined || error === undefined ? [actual] : [expect, error, actual],
  },
});

/**
 * A task into or out of its key's open tasks: in, only while no exclusive one is open (and, for an
 * exclusive one, while none at all is).
 */
const keyOpenWrite = ({ key, delta, exclusive }: KeyOpenChange): Write => ({
  type: "count",
  key: keyOpenTasksKey(key),
  add: { open: delta, ...(exclusive && { exclusive: delta }) },
  ...(delta > 0 && {
    when: exclusive ? { below: [{ counter: "open" as const, limit: 1 }] } : { zero: "exclusive" as const },
    conflict: "key_exclusive" as const,
  }),
});

/** A reservation of a daily budget, while each of its limits is above what the day has committed. */
function budgetClaimWrite({ scope, day, usd, tokens, limits, ofPool }: BudgetClaim): Write {
  const below = [
    ...(limits.usd === undefined ? [] : [{ counter: "committed_usd" as const, limit: limits.usd }]),
    ...(limits.tokens === undefined ? [] : [{ counter: "committed_tokens" as const, limit: limits.tokens }]),
  ];
  return {
    type: "count",
    key: spendKey(scope, day),
    add: { committed_usd: usd, committed_tokens: tokens },
    when: { below },
    conflict: ofPool ? "pool_budget_spent" : "budget_spent",
  };
}

/** A settled run's spend: its tenant's usage of the day in its pool, its budgets reconciled, its cost kept. */
function spendWrites({ tenant, pool, day, usd, tokens, hold, cost, ran }: SpendChange): Write[] {
  return [
    ...(ran
      ? [
          {
            type: "count" as const,
            key: spendKey(tenantScope(tenant), day, pool),
            add: { usd, tokens, runs: 1 },
          },
        ]
      : []),
    ...(hold?.scopes ?? []).map(
      (scope): Write => ({
        type: "count",
        key: spendKey(scope, day),
        add: { committed_usd: hold?.usd ?? 0, committed_tokens: hold?.tokens ?? 0, usd, tokens },
      }),
    ),
    ...(cost
      ? [
          {
            type: "set" as const,
            key: costSamplesKey(pool),
            values: { [costAttribute(cost.slot)]: [cost.usd, cost.tokens] },
          },
        ]
      : []),
  ];
}

/** A tenant or API key that a create found already stored. */
export const alreadyExists = () => new ConflictError("tenant or API key already exists");

/** A slot of a pool or key given back; `whenNoneWaiting`, only while its `waiting` counter is 0. */
const slotGivenBack = (
  key: Key,
  waiting: Counter,
  whenNoneWaiting?: boolean,
  heldSince?: string,
): Write & { type: "count" } => ({
  type: "count",
  key,
  add: { active: -1 },
  ...(whenNoneWaiting && { when: { zero: waiting }, conflict: "tasks_waiting" as const }),
  ...(heldSince !== undefined && { heldSince: { remove: Date.parse(heldSince) } }),
});

/**
 * The pools' counter writes of a change, one per pool item: slots taken (under max_concurrency, while not
 * paused; with `noneQueued`, only if no task waits) or given back (with `whenNoneWaiting`, only if none
 * waits), and the task entering or leaving the pool's queue (with `whilePoolFull`, only if it is full). A
 * change that takes and gives back a slot of one pool writes its item twice (refused).
 */
function poolWrites(change: StateChange): Write[] {
  const { acquire, release, queued } = change;
  const writes: (Write & { type: "count" })[] = [];
  if (acquire) {
    writes.push({
      type: "count",
      key: poolKey(acquire.pool),
      add: { active: 1 },
      when: {
        below: [{ counter: "active", limit: acquire.maxConcurrency }],
        notPausedAfter: acquire.now,
        ...(acquire.noneQueued && { zero: "queued" as const }),
      },
      conflict: "pool_closed",
      ...(acquire.heldSince !== undefined && { heldSince: { add: Date.parse(acquire.heldSince) } }),
      ...(acquire.fairRound && {
        set: { [fairRoundAttribute(acquire.fairRound.priority)]: acquire.fairRound.round },
      }),
    });
  }
  if (release) {
    writes.push(slotGivenBack(poolKey(release.pool), "queued", release.whenNoneWaiting, release.heldSince));
  }
  if (queued?.fromPool !== undefined) {
    writes.push({ type: "count", key: poolKey(queued.fromPool), add: { queued: -1 } });
  }
  if (queued) {
    // A slot taken or given back in the same change goes in the same write (whilePoolFull comes alone).
    const same = writes.find((w) => w.key.pk === poolKey(queued.pool).pk);
    if (same) same.add.queued = queued.delta;
    else {
      const full = queued.whilePoolFull;
      writes.push({
        type: "count",
        key: poolKey(queued.pool),
        add: { queued: queued.delta },
        ...(full !== undefined && {
          when: { atLeast: { counter: "active" as const, limit: full } },
          conflict: "pool_has_room" as const,
        }),
      });
    }
  }
  return writes;
}

/** The writes of a StateChange, in the order whose first failed condition names the conflict. */
export function writesOf(change: StateChange): Write[] {
  const writes: Write[] = [
    ...(change.tasks ?? []).map(
      ({ next, expectVersion }): Write => ({
        type: "put",
        item: taskItem(next),
        expectVersion,
        conflict: "task",
      }),
    ),
    ...(change.runs ?? []).map(
      ({ next, expectVersion }): Write => ({
        type: "put",
        item: runItem(next),
        expectVersion,
        conflict: "run",
      }),
    ),
    ...(change.keyOpen ? [keyOpenWrite(change.keyOpen)] : []),
    ...poolWrites(change),
  ];
  const { acquire, release, idempotency, queued } = change;
  if (acquire?.concurrencyKey !== undefined) {
    writes.push({
      type: "count",
      key: concurrencyKeyKey(acquire.concurrencyKey),
      add: { active: 1 },
      when: { below: [{ counter: "active", limit: acquire.keyLimit }] },
      conflict: "key_busy",
    });
  }
  for (const claim of acquire?.budgets ?? []) writes.push(budgetClaimWrite(claim));
  if (change.spend) writes.push(...spendWrites(change.spend));
  for (const { scope, limit } of acquire?.scopes ?? []) {
    writes.push({
      type: "count",
      key: scopeKey(scope),
      add: { active: 1 },
      when: { below: [{ counter: "active", limit }] },
      conflict: "scope_busy",
    });
  }
  if (idempotency) {
    const item = { ...compact(idempotency), ...idempotencyKey(idempotency.tenant, idempotency.key) };
    writes.push({ type: "put", item, conflict: "idempotency" });
  }
  if (queued) {
    const key = queuedCountKey(queued.tenant);
    const limit = queued.delta > 0 ? queued.limit : undefined;
    // Its total, and its count in each pool (fair share reads it); a task moved between pools is still one.
    const moved = queued.fromPool;
    writes.push({
      type: "count",
      key,
      add:
        moved === undefined
          ? { queued: queued.delta, [queuedInPoolAttribute(queued.pool)]: queued.delta }
          : { [queuedInPoolAttribute(moved)]: -1, [queuedInPoolAttribute(queued.pool)]: 1 },
      ...(limit !== undefined && {
        when: { below: [{ counter: "queued" as const, limit }] },
        conflict: "queued_quota" as const,
      }),
    });
  }
  if (change.keyWait) {
    const { key, delta, busyAt } = change.keyWait;
    writes.push({
      type: "count",
      key: concurrencyKeyKey(key),
      add: { waiting: delta },
      ...(busyAt !== undefined && {
        when: { atLeast: { counter: "active" as const, limit: busyAt } },
        conflict: "key_free" as const,
      }),
    });
  }
  if (change.events?.length) writes.push({ type: "append", item: eventLogItem(change.events) });
  if (change.sample) writes.push(sampleWrite(change.sample));
  if (change.waitOutcome) writes.push(waitOutcomeWrite(change.waitOutcome));
  if (release?.concurrencyKey !== undefined) {
    const key = concurrencyKeyKey(release.concurrencyKey);
    writes.push(slotGivenBack(key, "waiting", release.whenNoneWaiting));
  }
  for (const scope of release?.scopes ?? [])
    writes.push({ type: "count", key: scopeKey(scope), add: { active: -1 } });
  return writes;
}
