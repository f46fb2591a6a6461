import type { Deps } from "./deps.ts";
import { changeIdFor, type DomainEvent, type EventType, eventId } from "./events.ts";
import { withFairRound } from "./fair-share.ts";
import type { KeyOpenChange, KeyWaitChange, QueuedCountChange, RecordWrite, StateChange } from "./ports.ts";
import { CONCURRENCY_KEY_LIMIT, type Run, scopedConcurrencyKey, type Task } from "./records.ts";
import { TERMINAL_STATUSES } from "./status.ts";

/** The records a change was computed from; absent ones are new. */
export interface Before {
  task?: Task;
  run?: Run;
}

/**
 * The events of a change: one per task or run whose status it changes (and `task.created`, `run.skipped`
 * for new records). A new dispatched run needs none: `task.dispatched` says it.
 */
export function eventsOf(change: StateChange, before: Before, now: Date): DomainEvent[] {
  const task = change.tasks?.[0]?.next;
  if (!task) return [];
  const time = now.toISOString();
  const changeId = changeIdFor(time, task.version);
  const events: DomainEvent[] = [];
  const add = (type: EventType, status: string, extra: Partial<DomainEvent> = {}) =>
    events.push({
      id: eventId(changeId, events.length),
      type,
      time,
      tenant: task.tenant,
      pool: task.pool,
      status,
      task_uuid: task.uuid,
      name: task.name,
      callback: task.callback,
      workflow: task.workflow,
      ...extra,
    });
  const run = change.runs?.[0]?.next;
  if (run && run.status !== before.run?.status && (before.run || run.status === "skipped")) {
    const type: EventType = run.status === "running" ? "run.started" : `run.${run.status}`;
    add(type, run.status, {
      run_id: run.run_id,
      occurrence: run.occurrence,
      attempt: run.attempt,
      message: run.error,
    });
  }
  const created = { routed_by: task.routed_by, predicted_wait: task.predicted_wait };
  if (!before.task && task.status === "dispatched") {
    // Admitted as it was submitted (see admitAtSubmit): it was queued for no time at all.
    add("task.created", "queued", { occurrence: task.occurrence, attempt: 0, ...created });
    add("task.dispatched", task.status, {
      run_id: task.run_id,
      occurrence: task.occurrence,
      attempt: task.attempt,
    });
  } else if (task.status !== before.task?.status) {
    add(before.task ? `task.${task.status}` : "task.created", task.status, {
      run_id: task.run_id,
      occurrence: task.occurrence,
      attempt: task.attempt,
      message: task.status === "failed" ? task.error_message : undefined,
      ...(!before.task && created),
    });
  }
  return events;
}

/** The conditions on a task entering `queued` (see QueuedCountChange). */
export type QueueEntry = Pick<QueuedCountChange, "limit" | "whilePoolFull">;

/**
 * The move of the queued-task counters (the tenant's and the pool's): +1 for a task entering `queued`, −1
 * for one leaving it, and from one pool's to another's for a queued task moved. `entry` conditions the
 * entry: a submission's max_queued_tasks, a full pool.
 */
function queuedCountOf(
  change: StateChange,
  before: Before,
  entry?: QueueEntry,
): QueuedCountChange | undefined {
  const task = change.tasks?.[0]?.next;
  const was = before.task?.status === "queued";
  const is = task?.status === "queued";
  if (!task) return undefined;
  const { tenant, pool } = task;
  if (was && is && before.task?.pool !== pool) return { tenant, pool, delta: 1, fromPool: before.task?.pool };
  if (was === is) return undefined;
  return is ? { tenant, pool, delta: 1, ...entry } : { tenant, pool, delta: -1 };
}

/** A task waits for its busy key only while it is queued (see Task.key_parked). */
const parked = (task: Task | undefined) => task?.status === "queued" && task.key_parked === true;

/**
 * The move of a key's count of waiting tasks: +1 for a task parked (refused as `key_free` unless the key
 * is busy, so that no task waits for a key nobody holds), −1 for one leaving the wait.
 */
function keyWaitOf(task: Task | undefined, before: Before): KeyWaitChange | undefined {
  const [was, is] = [parked(before.task), parked(task)];
  if (!task || was === is) return undefined;
  const key = scopedConcurrencyKey(task) as string;
  return is ? { key, delta: 1, busyAt: CONCURRENCY_KEY_LIMIT } : { key, delta: -1 };
}

/** The move of a key's count of open tasks: +1 for a counted task stored, −1 for one that ends. */
function keyOpenOf(task: Task | undefined, before: Before): KeyOpenChange | undefined {
  if (!task?.key_counted) return undefined;
  const ends = TERMINAL_STATUSES.includes(task.status);
  if (before.task ? !ends || TERMINAL_STATUSES.includes(before.task.status) : ends) return undefined;
  const key = scopedConcurrencyKey(task) as string;
  return { key, delta: before.task ? -1 : 1, exclusive: task.exclusive === true };
}

/** A task entering a pool's queue (or moved to another pool's) takes its fair round there. */
async function withFairRoundOnEntry(
  deps: Pick<Deps, "counters" | "tenants" | "clock">,
  change: StateChange,
  before: Before,
): Promise<StateChange> {
  const [first, ...rest] = change.tasks ?? [];
  const queued = queuedCountOf(change, before);
  if (!first || queued?.delta !== 1) return change;
  // A submission that had to queue took its round already, to tell its place.
  if (!before.task && first.next.fair_round !== undefined) return change;
  return { ...change, tasks: [{ ...first, next: await withFairRound(deps, first.next) }, ...rest] };
}

/** A task that is not queued waits for nothing: its stored record says so. */
const withoutStaleParking = (writes: RecordWrite<Task>[] | undefined) =>
  writes?.map((w) =>
    (w.next.key_parked || w.next.budget_parked) && w.next.status !== "queued"
      ? { ...w, next: { ...w.next, key_parked: undefined, budget_parked: undefined } }
      : w,
  );

/**
 * Every state change goes through here: it is committed together with its events (an outbox), the
 * queued-task counters and the key's counts of waiting and open tasks. Returns its (first) task as stored:
 * a task entering a queue takes its fair round here. `queueEntry`: the conditions on a task
 * entering `queued` (past the tenant's quota: queued_quota; into a pool with room: pool_has_room).
 */
export async function commitChange(
  deps: Pick<Deps, "tasks" | "clock" | "counters" | "tenants">,
  proposed: StateChange,
  before: Before,
  queueEntry?: QueueEntry,
) {
  const change = await withFairRoundOnEntry(deps, proposed, before);
  const tasks = withoutStaleParking(change.tasks);
  const events = eventsOf(change, before, deps.clock.now());
  const queued = queuedCountOf(change, before, queueEntry);
  const keyWait = keyWaitOf(tasks?.[0]?.next, before);
  const keyOpen = keyOpenOf(tasks?.[0]?.next, before);
  await deps.tasks.commit({
    ...change,
    ...(tasks && { tasks }),
    ...(events.length > 0 && { events }),
    ...(queued && { queued }),
    ...(keyWait && { keyWait }),
    ...(keyOpen && { keyOpen }),
  });
  return tasks?.[0]?.next;
}
