/** The store ports' contract, run against the in-memory fake and against DynamoDB Local. */

import { randomUUID } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { dueShard, listingShard } from "../../adapters/table/keys.ts";
import { ConflictError, ValidationError } from "../../core/errors.ts";
import { type DomainEvent, type EventType, eventId } from "../../core/events.ts";
import {
  CommitConflict,
  type CommitConflictReason,
  PAUSED_INDEFINITELY,
  type Page,
  type SlotClaim,
  type Store,
} from "../../core/ports.ts";
import type { ApiKeyRecord, Run, Task, Tenant, WorkerRecord } from "../../core/records.ts";
import type { TemplateRevision } from "../../core/templates.ts";

/** Stores may share one table between tests, so every test uses fresh tenants, pools and keys. */
const unique = (prefix: string) => `${prefix}-${randomUUID()}`;
const at = (minute: number, year = 2030) => new Date(Date.UTC(year, 0, 1, 0, minute)).toISOString();

function makeTask(fields: Partial<Task> = {}): Task {
  const created = fields.create_time ?? at(0);
  return {
    uuid: randomUUID(),
    version: 1,
    tenant: "tenant",
    namespace: "default",
    tags: {},
    tool: "claude",
    prompt: "say hi",
    input_files: [],
    output_files: ["out/report.md"],
    pool: "pool",
    priority: 5,
    status: "queued",
    attempt: 0,
    max_attempts: 3,
    occurrence: 0,
    timeout: 3600,
    create_time: created,
    update_time: created,
    ...fields,
  };
}

function makeRun(task: Task, n: number, fields: Partial<Run> = {}): Run {
  return {
    run_id: `${task.uuid}-r${n}`,
    version: 1,
    task_uuid: task.uuid,
    tenant: task.tenant,
    pool: task.pool,
    attempt: n,
    occurrence: 0,
    status: "dispatched",
    tags: {},
    create_time: at(n),
    update_time: at(n),
    ...fields,
  };
}

const bump = <T extends { version: number }>(record: T, fields: Partial<T> = {}): T => ({
  ...record,
  ...fields,
  version: record.version + 1,
});

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (err: unknown) => err,
  );
}

async function expectConflict(promise: Promise<unknown>, reason: CommitConflictReason) {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(CommitConflict);
  expect(err).toMatchObject({ reason });
}

async function expectBadCursor(promise: Promise<unknown>) {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(ValidationError);
  expect(err).toMatchObject({ field: "cursor" });
}

/** Every page of a listing, following next cursors. */
async function allPages<T>(list: (cursor?: string) => Promise<Page<T>>): Promise<Page<T>[]> {
  const pages: Page<T>[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    pages.push(page);
    cursor = page.nextCursor;
  } while (cursor !== undefined && pages.length < 100);
  return pages;
}

const uuids = (tasks: Task[]) => tasks.map((t) => t.uuid);
const runIds = (runs: Run[]) => runs.map((r) => r.run_id);

/** A task uuid in listing shard `shard` (of the by-tenant index). */
function uuidInListingShard(shard: number): string {
  for (;;) {
    const uuid = randomUUID();
    if (listingShard(uuid) === shard) return uuid;
  }
}

/** A task uuid whose due shard is (or, with `not`, is not) `shard`. */
function uuidInShard(shard: number, not = false): string {
  for (;;) {
    const uuid = randomUUID();
    if ((dueShard(uuid) === shard) !== not) return uuid;
  }
}

export function describeStoreContract(name: string, makeStore: () => Promise<Store>) {
  describe(`${name}: store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });

    const create = (...tasks: Task[]) => store.commit({ tasks: tasks.map((next) => ({ next })) });

    describe("task writes", () => {
      it("stores a new task and reads back a copy", async () => {
        const task = makeTask({ tags: { team: "x" }, result: { exit_code: 0, tokens: { input: 3 } } });
        await create(task);

        const read = await store.getTask(task.uuid);
        expect(read).toEqual(task);
        if (read) read.tags.team = "changed";
        task.prompt = "changed";
        expect(await store.getTask(task.uuid)).toMatchObject({ prompt: "say hi", tags: { team: "x" } });
        expect(await store.getTask(randomUUID())).toBeUndefined();
      });

      it("refuses to create a task twice and keeps the first", async () => {
        const task = makeTask();
        await create(task);
        await expectConflict(create({ ...task, prompt: "other" }), "task");
        expect(await store.getTask(task.uuid)).toEqual(task);
      });

      it("updates a task only from the version it expects", async () => {
        const task = makeTask({ due_time: at(1) });
        await create(task);
        const dueUuids = async () => uuids(await store.dueTasks(dueShard(task.uuid), at(2), 100));
        expect(await dueUuids()).toContain(task.uuid);
        // The domain clears fields by setting them undefined; the store drops them.
        const v2 = bump(task, { status: "dispatched", due_time: undefined });
        await store.commit({ tasks: [{ next: v2, expectVersion: 1 }] });
        await expectConflict(store.commit({ tasks: [{ next: bump(task), expectVersion: 1 }] }), "task");

        const read = await store.getTask(task.uuid);
        expect(read).toEqual(v2);
        expect(read).not.toHaveProperty("due_time");
        expect(await dueUuids()).not.toContain(task.uuid);
      });

      it("refuses to update a task that does not exist", async () => {
        await expectConflict(
          store.commit({ tasks: [{ next: makeTask({ version: 2 }), expectVersion: 1 }] }),
          "task",
        );
      });
    });

    describe("run writes", () => {
      it("creates a run once and updates it only from the expected version", async () => {
        const task = makeTask();
        const run = makeRun(task, 1);
        await store.commit({ tasks: [{ next: task }], runs: [{ next: run }] });
        expect(await store.getRun(task.uuid, run.run_id)).toEqual(run);
        expect(await store.getRun(task.uuid, `${task.uuid}-r9`)).toBeUndefined();

        await expectConflict(store.commit({ runs: [{ next: run }] }), "run");
        const running = bump(run, { status: "running", worker: "w1" });
        await store.commit({ runs: [{ next: running, expectVersion: 1 }] });
        await expectConflict(store.commit({ runs: [{ next: bump(run), expectVersion: 1 }] }), "run");
        expect(await store.getRun(task.uuid, run.run_id)).toEqual(running);
      });
    });

    describe("slots", () => {
      const claim = (pool: string, fields: Partial<SlotClaim> = {}): SlotClaim => ({
        pool,
        maxConcurrency: 2,
        keyLimit: 1,
        now: at(0),
        ...fields,
      });

      it("refuses a slot while the pool is paused (pool_closed), writing nothing", async () => {
        const pool = unique("pool");
        await store.pausePool(pool, at(30));
        const task = makeTask({ pool });
        await expectConflict(
          store.commit({ tasks: [{ next: task }], acquire: claim(pool, { now: at(29) }) }),
          "pool_closed",
        );
        expect(await store.getTask(task.uuid)).toBeUndefined();
        expect((await store.poolState(pool)).active).toBe(0);
        await store.commit({ tasks: [{ next: task }], acquire: claim(pool, { now: at(30) }) });
        expect((await store.poolState(pool)).active).toBe(1);
      });

      it("keeps a pool's pause through claims and releases, and never shortens it", async () => {
        const pool = unique("pool");
        const none = { active: 0, queued: 0, heldSince: [] };
        expect(await store.poolState(pool)).toEqual({ ...none, pausedUntil: undefined });
        await store.pausePool(pool, at(30));
        await store.commit({
          tasks: [{ next: makeTask({ pool }) }],
          acquire: claim(pool, { now: at(31), heldSince: at(31) }),
        });
        await store.pausePool(pool, at(10));
        expect(await store.poolState(pool)).toEqual({
          active: 1,
          queued: 0,
          pausedUntil: at(30),
          heldSince: [Date.parse(at(31))],
        });
        await store.commit({ release: { pool, heldSince: at(31) } });
        await store.pausePool(pool, at(45));
        expect(await store.poolState(pool)).toEqual({ ...none, pausedUntil: at(45) });
        await store.resumePool(pool);
        expect(await store.poolState(pool)).toEqual({ ...none, pausedUntil: undefined });
      });

      it("keeps when each held slot was taken: a claim adds its time, a release takes its run's away", async () => {
        const pool = unique("pool");
        for (const second of [1, 2, 3]) {
          const now = at(second);
          await store.commit({ acquire: claim(pool, { now, heldSince: now, maxConcurrency: 3 }) });
        }
        const sorted = async () => (await store.poolState(pool)).heldSince.sort((a, b) => a - b);
        expect(await sorted()).toEqual([1, 2, 3].map((second) => Date.parse(at(second))));
        await store.commit({ release: { pool, heldSince: at(2) } });
        expect(await sorted()).toEqual([1, 3].map((second) => Date.parse(at(second))));
        // A refused change takes nothing away.
        const task = makeTask({ pool });
        await create(task);
        await expectConflict(
          store.commit({
            tasks: [{ next: bump(task), expectVersion: 9 }],
            release: { pool, heldSince: at(3) },
          }),
          "task",
        );
        expect((await store.poolState(pool)).active).toBe(2);
        expect(await sorted()).toEqual([1, 3].map((second) => Date.parse(at(second))));

        // A pool too large to keep them: a claim adds none, and a release takes none away, harmlessly.
        const large = unique("pool");
        await store.commit({ acquire: claim(large) });
        await store.commit({ release: { pool: large, heldSince: at(0) } });
        expect(await store.poolState(large)).toMatchObject({ active: 0, heldSince: [] });
      });

      it("claims up to maxConcurrency, then refuses with pool_closed and writes nothing", async () => {
        const pool = unique("pool");
        expect((await store.poolState(pool)).active).toBe(0);
        await store.commit({ tasks: [{ next: makeTask({ pool }) }], acquire: claim(pool) });
        await store.commit({ tasks: [{ next: makeTask({ pool }) }], acquire: claim(pool) });

        const third = makeTask({ pool });
        await expectConflict(store.commit({ tasks: [{ next: third }], acquire: claim(pool) }), "pool_closed");
        expect(await store.getTask(third.uuid)).toBeUndefined();
        expect((await store.poolState(pool)).active).toBe(2);
      });

      it("holds a concurrency key to its limit across pools (key_busy)", async () => {
        const [pool1, pool2, key] = [unique("pool"), unique("pool"), unique("key")];
        await store.commit({ tasks: [{ next: makeTask() }], acquire: claim(pool1, { concurrencyKey: key }) });

        const second = makeTask();
        const claimKey = claim(pool2, { concurrencyKey: key });
        await expectConflict(store.commit({ tasks: [{ next: second }], acquire: claimKey }), "key_busy");
        expect(await store.getTask(second.uuid)).toBeUndefined();
        expect((await store.poolState(pool2)).active).toBe(0);

        await store.commit({ release: { pool: pool1, concurrencyKey: key } });
        await store.commit({ tasks: [{ next: second }], acquire: claimKey });
        expect((await store.poolState(pool1)).active).toBe(0);
        expect((await store.poolState(pool2)).active).toBe(1);
      });

      it("holds a concurrency scope to its limit across pools (scope_busy), and gives its slots back", async () => {
        const [pool1, pool2, tool, model] = [
          unique("pool"),
          unique("pool"),
          unique("tool:"),
          unique("model:"),
        ];
        const scopes = [
          { scope: tool, limit: 2 },
          { scope: model, limit: 1 },
        ];
        await store.commit({ tasks: [{ next: makeTask() }], acquire: claim(pool1, { scopes }) });
        // The model's one slot is held: a task of it waits, in any pool; one of another model goes.
        const refused = makeTask();
        await expectConflict(
          store.commit({ tasks: [{ next: refused }], acquire: claim(pool2, { scopes }) }),
          "scope_busy",
        );
        expect(await store.getTask(refused.uuid)).toBeUndefined();
        expect((await store.poolState(pool2)).active).toBe(0);
        await store.commit({
          tasks: [{ next: makeTask() }],
          acquire: claim(pool2, { scopes: scopes.slice(0, 1) }),
        });
        expect(await store.scopeState(tool)).toEqual({ active: 2 });
        await expectConflict(
          store.commit({
            tasks: [{ next: makeTask() }],
            acquire: claim(pool2, { scopes: scopes.slice(0, 1) }),
          }),
          "scope_busy",
        );

        await store.commit({ release: { pool: pool1, scopes: [tool, model] } });
        expect([await store.scopeState(tool), await store.scopeState(model)]).toEqual([
          { active: 1 },
          { active: 0 },
        ]);
        await store.commit({ tasks: [{ next: makeTask() }], acquire: claim(pool1, { scopes }) });
        expect(await store.scopeState(model)).toEqual({ active: 1 });
      });

      it("parks a task for its key only while the key is busy (key_free), out of its pool's ready queue", async () => {
        const [pool, key] = [unique("pool"), unique("key")];
        const waiting = makeTask({ pool, concurrency_key: key, key_parked: true });
        const wait = { key: `tenant#${key}`, delta: 1 as const, busyAt: 1 };
        await expectConflict(store.commit({ tasks: [{ next: waiting }], keyWait: wait }), "key_free");
        expect(await store.getTask(waiting.uuid)).toBeUndefined();

        await store.commit({
          tasks: [{ next: makeTask() }],
          acquire: claim(unique("pool"), { concurrencyKey: wait.key }),
        });
        await store.commit({ tasks: [{ next: waiting }], keyWait: wait });
        expect(await store.keyState(wait.key)).toEqual({ active: 1, waiting: 1 });
        expect((await store.keyWaitingTasks(wait.key, 10)).map((t) => t.uuid)).toEqual([waiting.uuid]);
        expect(await store.readyTasks(pool, 10)).toEqual([]);

        const woken = bump(waiting, { key_parked: undefined });
        await store.commit({
          tasks: [{ next: woken, expectVersion: waiting.version }],
          keyWait: { key: wait.key, delta: -1 },
        });
        expect(await store.keyState(wait.key)).toEqual({ active: 1, waiting: 0 });
        expect(await store.keyWaitingTasks(wait.key, 10)).toEqual([]);
        expect((await store.readyTasks(pool, 10)).map((t) => t.uuid)).toEqual([waiting.uuid]);
      });

      it("keeps no task of a key beside an open exclusive one, and lists a key's tasks (key_exclusive)", async () => {
        const [tenant, account] = [unique("tenant"), unique("account")];
        const key = `${tenant}#${account}`;
        const keyed = (minute: number, fields: Partial<Task> = {}) =>
          makeTask({
            tenant,
            concurrency_key: account,
            key_counted: true,
            create_time: at(minute),
            ...fields,
          });
        const enter = (task: Task) =>
          store.commit({
            tasks: [{ next: task }],
            keyOpen: { key, delta: 1, exclusive: task.exclusive === true },
          });
        const end = async (task: Task) => {
          const ended = bump(task, { status: "succeeded" });
          await store.commit({
            tasks: [{ next: ended, expectVersion: task.version }],
            keyOpen: { key, delta: -1, exclusive: task.exclusive === true },
          });
          return ended;
        };
        const [first, exclusive, after] = [keyed(1), keyed(2, { exclusive: true }), keyed(3)];
        await enter(first);
        // An exclusive task waits for none: it enters only while no other task of its key is open.
        await expectConflict(enter(exclusive), "key_exclusive");
        expect(await store.getTask(exclusive.uuid)).toBeUndefined();
        const firstEnded = await end(first);
        await enter(exclusive);
        expect(await store.keyOpenTasks(key)).toEqual({ open: 1, exclusive: 1 });
        await expectConflict(enter(after), "key_exclusive");
        expect(await store.getTask(after.uuid)).toBeUndefined();
        const exclusiveEnded = await end(exclusive);
        await enter(after);
        expect(await store.keyOpenTasks(key)).toEqual({ open: 1, exclusive: 0 });

        // Another tenant's account of the same name is another key.
        const other = makeTask({ tenant: unique("tenant"), concurrency_key: account, create_time: at(4) });
        await create(other);
        const list = (fields: object = {}) =>
          store.listTasks({ tenant, concurrencyKey: account, size: 10, ...fields });
        expect(await list()).toEqual({ items: [after, exclusiveEnded, firstEnded], total: 3 });
        expect(await list({ status: "succeeded" })).toEqual({
          items: [exclusiveEnded, firstEnded],
          total: 2,
        });
        const [page1, page2] = await allPages((cursor) => list({ size: 2, cursor }));
        expect(uuids([...(page1?.items ?? []), ...(page2?.items ?? [])])).toEqual(
          uuids([after, exclusiveEnded, firstEnded]),
        );
        expect((await store.listTasks({ tenant, size: 10 })).total).toBe(3);
      });

      it("keeps the latest heartbeat of each part, and the applied config by its version", async () => {
        await store.recordHeartbeat("tick", { at: at(1), duration_ms: 40 });
        await store.recordHeartbeat("tick", { at: at(2), duration_ms: 50 });
        await store.recordHeartbeat("events-relay", { at: at(2), lag_seconds: 1.5 });
        expect(await store.heartbeats()).toEqual({
          tick: { at: at(2), duration_ms: 50 },
          "events-relay": { at: at(2), lag_seconds: 1.5 },
        });
        const applied = (version: number) => ({
          version,
          base: "b",
          config: { pools: [], concurrency_limits: {}, api: { throttle: { rate_per_second: 1, burst: 1 } } },
          applied_at: at(version),
        });
        const stored = await store.appliedConfig();
        const next = (stored?.version ?? 0) + 1;
        await expectConflict(store.applyConfig(applied(next), next), "config");
        await store.applyConfig(applied(next), stored?.version);
        expect(await store.appliedConfig()).toEqual(applied(next));
        await expectConflict(store.applyConfig(applied(next + 1), stored?.version), "config");
      });

      it("applies nothing of a change whose task write fails", async () => {
        const pool = unique("pool");
        const stored = makeTask();
        await create(stored);
        const fresh = makeTask();
        const run = makeRun(fresh, 1);
        const change = {
          tasks: [{ next: fresh }, { next: bump(stored), expectVersion: 7 }],
          runs: [{ next: run }],
          acquire: claim(pool),
        };
        await expectConflict(store.commit(change), "task");
        expect(await store.getTask(fresh.uuid)).toBeUndefined();
        expect(await store.getRun(fresh.uuid, run.run_id)).toBeUndefined();
        expect(await store.getTask(stored.uuid)).toEqual(stored);
        expect((await store.poolState(pool)).active).toBe(0);
      });

      it("refuses a change that writes one item twice, writing nothing", async () => {
        const pool = unique("pool");
        const task = makeTask();
        const change = { tasks: [{ next: task }], acquire: claim(pool), release: { pool } };
        await expect(store.commit(change)).rejects.toThrow();
        expect(await store.getTask(task.uuid)).toBeUndefined();
        expect((await store.poolState(pool)).active).toBe(0);
      });

      it("gives back a slot on release", async () => {
        const pool = unique("pool");
        await store.commit({ acquire: claim(pool) });
        await store.commit({ acquire: claim(pool) });
        await store.commit({ release: { pool } });
        expect((await store.poolState(pool)).active).toBe(1);
        await store.commit({ acquire: claim(pool) });
        expect((await store.poolState(pool)).active).toBe(2);
      });

      it("gives back a slot whenNoneWaiting only while no task waits in the pool or on the key (tasks_waiting)", async () => {
        const [tenant, pool, key] = [unique("tenant"), unique("pool"), unique("key")];
        const held = makeTask({ pool });
        await store.commit({ tasks: [{ next: held }], acquire: claim(pool, { concurrencyKey: key }) });
        const ended = { ...held, version: held.version + 1, status: "succeeded" as const };
        const release = { pool, concurrencyKey: key, whenNoneWaiting: true };

        await store.commit({ queued: { tenant, pool, delta: 1 } });
        const refused = { tasks: [{ next: ended, expectVersion: held.version }], release };
        await expectConflict(store.commit(refused), "tasks_waiting");
        expect((await store.getTask(held.uuid))?.status).toBe(held.status);
        await store.commit({ queued: { tenant, pool, delta: -1 } });

        await store.commit({
          tasks: [{ next: makeTask({ concurrency_key: key, key_parked: true }) }],
          keyWait: { key, delta: 1, busyAt: 1 },
        });
        await expectConflict(store.commit(refused), "tasks_waiting");
        expect((await store.poolState(pool)).active).toBe(1);
        await store.commit({ keyWait: { key, delta: -1 } });

        await store.commit(refused);
        expect((await store.getTask(held.uuid))?.status).toBe("succeeded");
        expect(await store.poolState(pool)).toMatchObject({ active: 0, queued: 0 });
      });
    });

    describe("queued-task counters", () => {
      it("move the tenant's and the pool's together, refusing an entry at the tenant's limit (queued_quota)", async () => {
        const [tenant, pool] = [unique("tenant"), unique("pool")];
        const enter = (limit?: number) => ({ tenant, pool, delta: 1 as const, limit });
        expect(await store.queuedCount(tenant)).toBe(0);
        await store.commit({ tasks: [{ next: makeTask({ tenant, pool }) }], queued: enter(2) });
        await store.commit({ tasks: [{ next: makeTask({ tenant, pool }) }], queued: enter(2) });
        const third = makeTask({ tenant, pool });
        await expectConflict(store.commit({ tasks: [{ next: third }], queued: enter(2) }), "queued_quota");
        expect(await store.getTask(third.uuid)).toBeUndefined();
        expect(await store.queuedCount(tenant)).toBe(2);
        expect((await store.poolState(pool)).queued).toBe(2);

        await store.commit({ queued: { tenant, pool, delta: -1 } });
        await store.commit({ tasks: [{ next: third }], queued: enter(2) });
        await store.commit({ queued: enter() }); // no limit: a retry or a resumed task re-entering the queue
        expect(await store.queuedCount(tenant)).toBe(3);
        expect(await store.poolState(pool)).toEqual({
          active: 0,
          queued: 3,
          pausedUntil: undefined,
          heldSince: [],
        });
        expect(await store.queuedCount(unique("tenant"))).toBe(0);
      });

      it("move the pool's with a slot taken or given back, in one write of the pool item", async () => {
        const [tenant, pool] = [unique("tenant"), unique("pool")];
        const claim = { pool, maxConcurrency: 2, keyLimit: 1, now: at(0) };
        await store.commit({ queued: { tenant, pool, delta: 1 } });
        await store.commit({ acquire: claim, queued: { tenant, pool, delta: -1 } });
        expect(await store.poolState(pool)).toMatchObject({ active: 1, queued: 0 });
        await store.commit({ release: { pool }, queued: { tenant, pool, delta: 1 } });
        expect(await store.poolState(pool)).toMatchObject({ active: 0, queued: 1 });
      });

      it("keep the tenant's count in each pool and the round each pool last served (fair share)", async () => {
        const [tenant, pool, other] = [unique("tenant"), unique("pool"), unique("pool")];
        await store.commit({ queued: { tenant, pool, delta: 1 } });
        await store.commit({ queued: { tenant, pool, delta: 1 } });
        await store.commit({ queued: { tenant, pool: other, delta: 1 } });
        expect(await store.fairState(pool, tenant, 5)).toEqual({ round: 0, queued: 2 });
        const claim = {
          pool,
          maxConcurrency: 2,
          keyLimit: 1,
          now: at(0),
          fairRound: { priority: 5, round: 1.5 },
        };
        await store.commit({ acquire: claim, queued: { tenant, pool, delta: -1 } });
        expect(await store.fairState(pool, tenant, 5)).toEqual({ round: 1.5, queued: 1 });
        expect(await store.fairState(pool, tenant, 9)).toEqual({ round: 0, queued: 1 });
        await store.commit({ queued: { tenant, pool: other, delta: 1, fromPool: pool } });
        expect(await store.fairState(other, tenant, 5)).toEqual({ round: 0, queued: 2 });
        expect(await store.queuedCount(tenant)).toBe(2);
      });

      it("move from one pool's to another's for a queued task moved, the tenant's staying", async () => {
        const [tenant, from, to] = [unique("tenant"), unique("pool"), unique("pool")];
        await store.commit({ queued: { tenant, pool: from, delta: 1 } });
        await store.commit({ queued: { tenant, pool: to, delta: 1, fromPool: from } });
        expect((await store.poolState(from)).queued).toBe(0);
        expect((await store.poolState(to)).queued).toBe(1);
        expect(await store.queuedCount(tenant)).toBe(1);
      });

      it("refuse a slot asked for with noneQueued while a task waits in the pool (pool_closed)", async () => {
        const [tenant, pool] = [unique("tenant"), unique("pool")];
        const claim = { pool, maxConcurrency: 2, keyLimit: 1, now: at(0), noneQueued: true };
        await store.commit({ acquire: claim });
        await store.commit({ queued: { tenant, pool, delta: 1 } });
        const task = makeTask({ pool });
        await expectConflict(store.commit({ tasks: [{ next: task }], acquire: claim }), "pool_closed");
        expect(await store.getTask(task.uuid)).toBeUndefined();
        await store.commit({ queued: { tenant, pool, delta: -1 } });
        await store.commit({ tasks: [{ next: task }], acquire: claim });
        expect(await store.poolState(pool)).toMatchObject({ active: 2, queued: 0 });
      });
    });

    describe("daily budgets and usage", () => {
      it("reserve while the day's committed spend is under each limit, and settle what was spent", async () => {
        const [scope, pool, tenant] = [`tenant:${unique("t")}`, unique("pool"), unique("t")];
        const claim = (usd: number, tokens: number) => ({
          acquire: {
            pool,
            maxConcurrency: 10,
            keyLimit: 1,
            now: at(0),
            budgets: [
              { scope, day: "2026-01-01", usd, tokens, limits: { usd: 0.05, tokens: 1000 }, ofPool: false },
            ],
          },
        });
        await store.commit(claim(0.03, 10));
        await store.commit(claim(0.03, 10)); // 0.03 < 0.05: still under, so one more
        await expectConflict(store.commit(claim(0.001, 0)), "budget_spent");
        expect((await store.poolState(pool)).active).toBe(2);
        // A settle: the usage of the day in the pool, the budget's reservation replaced by the spend.
        await store.commit({
          spend: {
            tenant,
            pool,
            day: "2026-01-01",
            usd: 0.01,
            tokens: 40,
            hold: { scopes: [scope], usd: -0.02, tokens: 30 },
            cost: { slot: 3, usd: 0.01, tokens: 40 },
            ran: true,
          },
        });
        const [budget] = await store.spend(scope, "2026-01-01", "2026-01-01");
        expect(budget).toMatchObject({
          scope,
          day: "2026-01-01",
          committed_tokens: 50,
          usd: 0.01,
          tokens: 40,
        });
        expect(budget?.committed_usd).toBeCloseTo(0.04, 10);
        expect(await store.spend(`tenant:${tenant}`, "2025-12-31", "2026-01-01")).toEqual([
          {
            scope: `tenant:${tenant}`,
            day: "2026-01-01",
            pool,
            committed_usd: 0,
            committed_tokens: 0,
            usd: 0.01,
            tokens: 40,
            runs: 1,
          },
        ]);
        expect(await store.costSamples(pool)).toEqual([{ usd: 0.01, tokens: 40 }]);
        const pooled = {
          ...claim(0, 0).acquire,
          budgets: [
            {
              scope: `pool:${pool}`,
              day: "2026-01-01",
              usd: 0,
              tokens: 5,
              limits: { tokens: 5 },
              ofPool: true,
            },
          ],
        };
        await store.commit({ acquire: pooled });
        await expectConflict(store.commit({ acquire: pooled }), "pool_budget_spent");
      });

      it("set and remove a tenant's budget and weight, only of a tenant that exists", async () => {
        const tenant: Tenant = {
          id: unique("t"),
          name: "acme",
          rate_limit_per_minute: 100,
          create_time: at(0),
        };
        const key: ApiKeyRecord = {
          key_id: unique("k"),
          tenant_id: tenant.id,
          key_hash: randomUUID().replaceAll("-", ""),
          scopes: ["tasks:read"],
          create_time: at(0),
        };
        await store.createTenant(tenant, key);
        const budget = { usd_per_day: 5, on_exceed: "refuse" as const };
        expect(await store.setTenantSettings(tenant.id, { budget, weight: 2 })).toBe(true);
        expect(await store.getTenant(tenant.id)).toMatchObject({ name: "acme", budget, weight: 2 });
        expect(await store.setTenantSettings(tenant.id, { budget: null })).toBe(true);
        const stored = await store.getTenant(tenant.id);
        expect([stored?.budget, stored?.weight]).toEqual([undefined, 2]);
        expect(await store.setTenantSettings(unique("t_missing"), { budget })).toBe(false);
      });
    });

    describe("tool accounts", () => {
      it("store each account's state on its version, listed together", async () => {
        const account = unique("acct");
        const record = {
          tool: "claude" as const,
          account,
          version: 1,
          state: "limited" as const,
          reset_at: at(60),
          limit_source: "rate_limit_event" as const,
          window: "five_hour",
          update_time: at(0),
        };
        await store.putToolAccount({ next: record });
        await expectConflict(store.putToolAccount({ next: record }), "account");
        await expectConflict(
          store.putToolAccount({ next: { ...record, version: 3 }, expectVersion: 2 }),
          "account",
        );
        const available = { ...record, version: 2, state: "available" as const, reset_at: undefined };
        await store.putToolAccount({ next: available, expectVersion: 1 });
        const { reset_at: _, ...stored } = available;
        expect((await store.toolAccounts()).filter((a) => a.account === account)).toEqual([stored]);
      });

      it("lift a limit's pause of a pool, never an admin's", async () => {
        const [limited, paused] = [unique("pool"), unique("pool")];
        await store.pauseForLimit(limited, at(60));
        await store.pausePool(paused, PAUSED_INDEFINITELY);
        await store.liftLimitPause(limited);
        await store.liftLimitPause(paused);
        await store.liftLimitPause(unique("pool")); // none: nothing to lift
        expect((await store.poolState(limited)).pausedUntil).toBeUndefined();
        expect((await store.poolState(paused)).pausedUntil).toBe(PAUSED_INDEFINITELY);
      });
    });

    describe("queue entry behind a full pool", () => {
      it("counts a task in only while every slot is held (pool_has_room), writing nothing otherwise", async () => {
        const [tenant, pool] = [unique("tenant"), unique("pool")];
        const claim = { pool, maxConcurrency: 2, keyLimit: 1, now: at(0) };
        const enter = { tenant, pool, delta: 1 as const, whilePoolFull: 2 };
        await store.commit({ acquire: claim });
        const task = makeTask({ tenant, pool });
        await expectConflict(store.commit({ tasks: [{ next: task }], queued: enter }), "pool_has_room");
        expect(await store.getTask(task.uuid)).toBeUndefined();
        expect(await store.queuedCount(tenant)).toBe(0);

        await store.commit({ acquire: claim });
        await store.commit({ tasks: [{ next: task }], queued: enter });
        expect(await store.poolState(pool)).toMatchObject({ active: 2, queued: 1 });
        expect(await store.queuedCount(tenant)).toBe(1);
      });
    });

    describe("idempotency", () => {
      it("keeps one record per tenant and key, refusing the change that repeats it", async () => {
        const [tenant, key] = [unique("tenant"), unique("idem")];
        const first = makeTask({ tenant });
        const record = { tenant, key, uuid: first.uuid, body_hash: "h1" };
        await store.commit({ tasks: [{ next: first }], idempotency: record });
        expect(await store.getIdempotency(tenant, key)).toEqual(record);

        const pool = unique("pool");
        const again = makeTask({ tenant });
        const change = {
          tasks: [{ next: again }],
          idempotency: { ...record, uuid: again.uuid, body_hash: "h2" },
          acquire: { pool, maxConcurrency: 5, keyLimit: 1, now: at(0) },
        };
        await expectConflict(store.commit(change), "idempotency");
        expect(await store.getTask(again.uuid)).toBeUndefined();
        expect((await store.poolState(pool)).active).toBe(0);
        expect(await store.getIdempotency(tenant, key)).toEqual(record);

        const other = unique("tenant");
        await store.commit({ idempotency: { ...record, tenant: other } });
        expect(await store.getIdempotency(other, key)).toMatchObject({ tenant: other, uuid: first.uuid });
        expect(await store.getIdempotency(tenant, unique("idem"))).toBeUndefined();
      });
    });

    describe("a pool's sample of recent runs", () => {
      it("keeps each slot's latest run, apart from other pools, and only with a change that is applied", async () => {
        const pool = unique("pool");
        expect(await store.poolSamples(pool)).toEqual({ held: [], pickup: [], priority: [] });
        const sample = (slot: number, held: number) => ({
          pool,
          slot,
          held_seconds: held,
          pickup_seconds: held / 10,
          priority: held === 90 ? 8 : 5,
        });
        await store.commit({ sample: sample(3, 40) });
        await store.commit({ sample: sample(7, 90) });
        await store.commit({ sample: sample(3, 20) });
        const kept = await store.poolSamples(pool);
        const sorted = (values: number[]) => values.sort((a, b) => a - b);
        expect([sorted(kept.held), sorted(kept.pickup), sorted(kept.priority)]).toEqual([
          [20, 90],
          [2, 9],
          [5, 8],
        ]);
        expect(await store.poolSamples(unique("pool"))).toEqual({ held: [], pickup: [], priority: [] });

        // A refused change writes no sample.
        const task = makeTask({ pool });
        await create(task);
        await expect(
          store.commit({ tasks: [{ next: bump(task), expectVersion: 9 }], sample: sample(11, 500) }),
        ).rejects.toThrow(CommitConflict);
        expect((await store.poolSamples(pool)).held).not.toContain(500);
      });
    });

    describe("a pool's recent wait outcomes", () => {
      it("keeps each slot's latest, beside the pool's sample and apart from other pools", async () => {
        const pool = unique("pool");
        expect(await store.waitOutcomes(pool)).toEqual([]);
        const outcome = (slot: number, actual: number) => ({ pool, slot, expect: 10, error: 4.5, actual });
        await store.commit({ waitOutcome: outcome(5, 12.5) });
        await store.commit({
          waitOutcome: outcome(9, 30),
          sample: { pool, slot: 9, held_seconds: 8, pickup_seconds: 1, priority: 5 },
        });
        await store.commit({ waitOutcome: outcome(5, 7) });
        const kept = (await store.waitOutcomes(pool)).sort((a, b) => a.actual - b.actual);
        expect(kept).toEqual([
          { expect: 10, error: 4.5, actual: 7 },
          { expect: 10, error: 4.5, actual: 30 },
        ]);
        expect(await store.poolSamples(pool)).toEqual({ held: [8], pickup: [1], priority: [5] });
        expect(await store.waitOutcomes(unique("pool"))).toEqual([]);
      });
    });

    describe("ready and due tasks", () => {
      it("lists a pool's queued tasks by priority, then earliest ready time", async () => {
        const pool = unique("pool");
        const low = makeTask({ pool, priority: 1, ready_time: at(1) });
        const midLate = makeTask({ pool, priority: 5, ready_time: at(5) });
        const midEarly = makeTask({ pool, priority: 5, ready_time: at(2) });
        const midCreated = makeTask({ pool, priority: 5, create_time: at(3) }); // never re-queued
        const high = makeTask({ pool, priority: 9, ready_time: at(9) });
        const scheduled = makeTask({ pool, priority: 9, status: "scheduled", ready_time: at(0) });
        const elsewhere = makeTask({ pool: unique("pool"), priority: 9, ready_time: at(0) });
        await create(low, midLate, midEarly, midCreated, high, scheduled, elsewhere);

        expect(uuids(await store.readyTasks(pool, 10))).toEqual(
          uuids([high, midEarly, midCreated, midLate, low]),
        );
        expect(uuids(await store.readyTasks(pool, 2))).toEqual(uuids([high, midEarly]));
        expect(uuids(await store.readyTasks(pool, 2, midEarly))).toEqual(uuids([midCreated, midLate]));

        await store.commit({ tasks: [{ next: bump(high, { status: "dispatched" }), expectVersion: 1 }] });
        expect(uuids(await store.readyTasks(pool, 10))).toEqual(uuids([midEarly, midCreated, midLate, low]));
      });

      it("counts the queued tasks of a pool admitted before a task, up to a cap", async () => {
        const pool = unique("pool");
        const tasks = [9, 5, 5, 1].map((priority, i) => makeTask({ pool, priority, ready_time: at(i) }));
        const [high, midEarly, midLate, low] = tasks as [Task, Task, Task, Task];
        const parked = makeTask({
          pool,
          priority: 9,
          ready_time: at(0),
          concurrency_key: "k",
          key_parked: true,
        });
        await create(low, midLate, high, midEarly, parked, makeTask({ pool: unique("pool"), priority: 9 }));
        expect(await Promise.all(tasks.map((t) => store.readyAhead(t, 100)))).toEqual([0, 1, 2, 3]);
        expect(await store.readyAhead(low, 2)).toBe(2);
      });

      it("lists a shard's tasks due at or before a time, earliest first", async () => {
        // Year 2000: earlier than any due time another test writes.
        const shard = dueShard(randomUUID());
        const inShard = (minute: number | undefined) =>
          makeTask({
            uuid: uuidInShard(shard),
            status: "scheduled",
            due_time: minute === undefined ? undefined : at(minute, 2000),
          });
        const [d1, d2, d3, never] = [inShard(1), inShard(2), inShard(3), inShard(undefined)];
        const otherShard = makeTask({ uuid: uuidInShard(shard, true), due_time: at(1, 2000) });
        await create(d3, d1, d2, never, otherShard);

        expect(uuids(await store.dueTasks(shard, at(2, 2000), 10))).toEqual(uuids([d1, d2]));
        expect(uuids(await store.dueTasks(shard, at(9, 2000), 1))).toEqual(uuids([d1]));
        expect(uuids(await store.dueTasks(dueShard(otherShard.uuid), at(1, 2000), 10))).toEqual(
          uuids([otherShard]),
        );
      });
    });

    describe("listing tasks", () => {
      let tenant: string;
      let t: Record<"a1" | "a2" | "a3" | "a4" | "a5" | "b1", Task>;
      beforeEach(async () => {
        tenant = unique("tenant");
        t = {
          a1: makeTask({ tenant, pool: "p1", namespace: "web", tags: { team: "x" }, create_time: at(1) }),
          a2: makeTask({ tenant, pool: "p2", namespace: "web", tags: { team: "y" }, create_time: at(2) }),
          a3: makeTask({
            tenant,
            pool: "p1",
            namespace: "batch",
            tags: { team: "x" },
            status: "running",
            create_time: at(3),
          }),
          a4: makeTask({ tenant, pool: "p1", namespace: "batch", create_time: at(4) }),
          a5: makeTask({
            tenant,
            pool: "p1",
            namespace: "web",
            tags: { team: "x" },
            status: "succeeded",
            create_time: at(5),
          }),
          b1: makeTask({
            tenant: unique("tenant"),
            pool: "p1",
            namespace: "web",
            tags: { team: "x" },
            create_time: at(6),
          }),
        };
        await create(...Object.values(t));
      });

      it("lists a status newest first, with its total", async () => {
        const page = await store.listTasks({ tenant, status: "queued", size: 10 });
        expect(page).toEqual({ items: [t.a4, t.a2, t.a1], total: 3 });
      });

      it("lists all of a tenant's tasks grouped by status, and none of another tenant's", async () => {
        const page = await store.listTasks({ tenant, size: 10 });
        expect(page.total).toBe(5);
        expect(uuids(page.items).sort()).toEqual(uuids([t.a1, t.a2, t.a3, t.a4, t.a5]).sort());
        const statuses = page.items.map((task) => task.status);
        const groups = statuses.filter((status, i) => status !== statuses[i - 1]);
        expect(groups).toHaveLength(new Set(statuses).size);

        expect(await store.listTasks({ tenant: t.b1.tenant, size: 10 })).toEqual({ items: [t.b1], total: 1 });
        expect(await store.listTasks({ tenant: unique("tenant"), size: 10 })).toEqual({
          items: [],
          total: 0,
        });
      });

      it("filters by pool, namespace and tag, counting only matches", async () => {
        const list = (filter: object) => store.listTasks({ tenant, size: 10, ...filter });
        const pool = await list({ pool: "p1" });
        expect(pool.total).toBe(4);
        expect(uuids(pool.items).sort()).toEqual(uuids([t.a1, t.a3, t.a4, t.a5]).sort());
        expect(await list({ namespace: "batch", status: "queued" })).toEqual({ items: [t.a4], total: 1 });
        expect(await list({ status: "queued", tag: { key: "team", value: "x" } })).toEqual({
          items: [t.a1],
          total: 1,
        });
        expect(await list({ pool: "p1", tag: { key: "team", value: "y" } })).toEqual({ items: [], total: 0 });
      });

      it.each([1, 2, 3])(
        "pages through a filtered listing of size %i, each task exactly once",
        async (size) => {
          const pages = await allPages((cursor) => store.listTasks({ tenant, pool: "p1", size, cursor }));
          expect(pages).toHaveLength(Math.ceil(4 / size));
          for (const page of pages) expect(page.total).toBe(4);
          for (const page of pages.slice(0, -1)) expect(page.items).toHaveLength(size);
          expect(pages.at(-1)?.nextCursor).toBeUndefined();
          const listed = uuids(pages.flatMap((page) => page.items));
          expect(listed.sort()).toEqual(uuids([t.a1, t.a3, t.a4, t.a5]).sort());
        },
      );

      it("refuses a cursor it did not produce for this listing", async () => {
        // Three tasks of one listing shard: after a page of one, the cursor holds a key in that shard.
        for (let i = 0; i < 3; i++) {
          await create(makeTask({ tenant, uuid: uuidInListingShard(0), create_time: at(40 + i) }));
        }
        const { nextCursor } = await store.listTasks({ tenant, status: "queued", size: 1 });
        expect(nextCursor).toBeDefined();
        const cursor = nextCursor as string;
        await expectBadCursor(store.listTasks({ tenant, size: 1, cursor: "not-a-cursor" }));
        await expectBadCursor(
          store.listTasks({ tenant, size: 1, cursor: Buffer.from("{}").toString("base64url") }),
        );
        await expectBadCursor(store.listTasks({ tenant: t.b1.tenant, status: "queued", size: 1, cursor }));
        await expectBadCursor(store.listTasks({ tenant, status: "running", size: 1, cursor }));
        await expectBadCursor(store.listRuns({ tenant, size: 1, cursor }));
        // Forged cursors that name this listing but hold positions no key attribute can hold.
        const forged = JSON.parse(Buffer.from(cursor, "base64url").toString()) as {
          of: string;
          at: unknown[];
        };
        const shard = forged.at.findIndex((p) => typeof p === "object" && p !== null);
        const key = forged.at[shard] as Record<string, string>;
        for (const change of [
          { pk: "" },
          { sk: "" },
          { gsi1sk: `queued#${"x".repeat(1100)}` },
          { gsi1pk: "T#x" },
        ]) {
          const at = forged.at.map((p, i) => (i === shard ? { ...key, ...change } : p));
          const bad = Buffer.from(JSON.stringify({ ...forged, at })).toString("base64url");
          await expectBadCursor(store.listTasks({ tenant, status: "queued", size: 1, cursor: bad }));
        }
        const short = Buffer.from(JSON.stringify({ ...forged, at: forged.at.slice(1) })).toString(
          "base64url",
        );
        await expectBadCursor(store.listTasks({ tenant, status: "queued", size: 1, cursor: short }));
      });
    });

    describe("listing runs", () => {
      let tenant: string;
      let task: Task;
      let r: Record<"r1" | "r2" | "r3" | "s1" | "q1", Run>;
      beforeEach(async () => {
        tenant = unique("tenant");
        task = makeTask({ tenant });
        const sibling = makeTask({ tenant });
        const foreign = makeTask({ tenant: unique("tenant") });
        r = {
          r1: makeRun(task, 1, { status: "failed" }),
          r2: makeRun(task, 2, { status: "failed" }),
          r3: makeRun(task, 3, { status: "running" }),
          s1: makeRun(sibling, 4, { status: "failed" }),
          q1: makeRun(foreign, 5, { status: "failed" }),
        };
        await store.commit({ runs: [r.r3, r.r1, r.r2, r.s1, r.q1].map((next) => ({ next })) });
      });

      it("lists a task's runs oldest first, optionally by status", async () => {
        expect(await store.listRuns({ tenant, taskUuid: task.uuid, size: 10 })).toEqual({
          items: [r.r1, r.r2, r.r3],
          total: 3,
        });
        expect(await store.listRuns({ tenant, taskUuid: task.uuid, status: "failed", size: 10 })).toEqual({
          items: [r.r1, r.r2],
          total: 2,
        });
        const pages = await allPages((cursor) =>
          store.listRuns({ tenant, taskUuid: task.uuid, size: 2, cursor }),
        );
        expect(pages.map((page) => runIds(page.items))).toEqual([runIds([r.r1, r.r2]), runIds([r.r3])]);
      });

      it("lists a tenant's runs newest first, never another tenant's", async () => {
        const failed = await store.listRuns({ tenant, status: "failed", size: 10 });
        expect(failed).toEqual({ items: [r.s1, r.r2, r.r1], total: 3 });
        const all = await store.listRuns({ tenant, size: 10 });
        expect(all.total).toBe(4);
        expect(runIds(all.items).sort()).toEqual(runIds([r.r1, r.r2, r.r3, r.s1]).sort());
        const foreign = { tenant: unique("tenant"), taskUuid: task.uuid, size: 10 };
        expect(await store.listRuns(foreign)).toEqual({ items: [], total: 0 });
      });

      it("refuses a cursor of another task's runs", async () => {
        const { nextCursor } = await store.listRuns({ tenant, taskUuid: task.uuid, size: 1 });
        expect(nextCursor).toBeDefined();
        const cursor = nextCursor as string;
        await expectBadCursor(store.listRuns({ tenant, taskUuid: r.s1.task_uuid, size: 1, cursor }));
        await expectBadCursor(store.listRuns({ tenant, size: 1, cursor }));
      });
    });

    describe("tenants and API keys", () => {
      const makeTenant = (minute: number): Tenant => ({
        id: unique("t"),
        name: "acme",
        rate_limit_per_minute: 100,
        create_time: at(minute),
      });
      const makeKey = (tenant: Tenant, fields: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
        key_id: unique("k"),
        tenant_id: tenant.id,
        key_hash: randomUUID().replaceAll("-", ""),
        scopes: ["tasks:read", "tasks:write"],
        create_time: tenant.create_time,
        ...fields,
      });

      it("creates a tenant with its first key, finding the key by hash", async () => {
        const tenant = makeTenant(1);
        const key = makeKey(tenant);
        await store.createTenant(tenant, key);
        expect(await store.getTenant(tenant.id)).toEqual(tenant);
        expect(await store.findApiKey(key.key_hash)).toEqual(key);
        expect(await store.listApiKeys(tenant.id)).toEqual([key]);
        expect(await store.getTenant(unique("t"))).toBeUndefined();
        expect(await store.findApiKey("0".repeat(64))).toBeUndefined();
      });

      it("creates nothing when the first key's hash is taken", async () => {
        const first = makeTenant(1);
        const key = makeKey(first);
        await store.createTenant(first, key);
        const second = makeTenant(2);
        const err = await rejection(store.createTenant(second, makeKey(second, { key_hash: key.key_hash })));
        expect(err).toBeInstanceOf(ConflictError);
        expect(await store.getTenant(second.id)).toBeUndefined();
        expect(await store.findApiKey(key.key_hash)).toEqual(key);
      });

      it("adds keys and revokes one by id, within its tenant only", async () => {
        const tenant = makeTenant(1);
        const [first, second] = [makeKey(tenant), makeKey(tenant)];
        await store.createTenant(tenant, first);
        await store.putApiKey(second);
        const keys = await store.listApiKeys(tenant.id);
        expect(keys).toHaveLength(2);
        expect(keys).toEqual(expect.arrayContaining([first, second]));

        const other = makeTenant(2);
        await store.createTenant(other, makeKey(other));
        expect(await store.revokeApiKey(other.id, first.key_id, at(3))).toBe(false);
        expect(await store.revokeApiKey(tenant.id, unique("k"), at(3))).toBe(false);
        expect(await store.findApiKey(first.key_hash)).toEqual(first);

        expect(await store.revokeApiKey(tenant.id, first.key_id, at(4))).toBe(true);
        expect(await store.revokeApiKey(tenant.id, first.key_id, at(5))).toBe(true);
        expect(await store.findApiKey(first.key_hash)).toEqual({ ...first, revoked_time: at(4) });
        expect(await store.findApiKey(second.key_hash)).toEqual(second);
      });

      it("lists tenants oldest first", async () => {
        const [older, newer] = [makeTenant(1), makeTenant(2)];
        await store.createTenant(newer, makeKey(newer));
        await store.createTenant(older, makeKey(older));
        const ids = new Set([older.id, newer.id]);
        const listed = (await store.listTenants()).filter((tenant) => ids.has(tenant.id));
        expect(listed).toEqual([older, newer]);
      });
    });

    describe("templates", () => {
      const revision = (tenant: string, name: string, n: number): TemplateRevision => ({
        tenant,
        name,
        revision: n,
        type: "prompt",
        schema: `prompt: "v${n} {{ value.x }}"`,
        extra: { n },
        create_time: at(n),
      });

      it("stores revisions 1, 2, 3 once each, never with a gap, and reads the latest or any one", async () => {
        const [tenant, name] = [unique("tenant"), unique("tpl")];
        await store.putRevision(revision(tenant, name, 1));
        await expectConflict(store.putRevision(revision(tenant, name, 1)), "template");
        await expectConflict(store.putRevision(revision(tenant, name, 3)), "template");
        await store.putRevision(revision(tenant, name, 2));
        expect((await store.getTemplate(tenant, name))?.revision).toBe(2);
        expect(await store.getTemplate(tenant, name, 1)).toEqual(revision(tenant, name, 1));
        expect(await store.getTemplate(tenant, name, 9)).toBeUndefined();
        expect(await store.getTemplate(unique("tenant"), name)).toBeUndefined();
      });

      it("lists a tenant's templates at their latest revision, by name, and no other tenant's", async () => {
        const [tenant, other] = [unique("tenant"), unique("tenant")];
        await store.putRevision(revision(tenant, "b", 1));
        await store.putRevision(revision(tenant, "a", 1));
        await store.putRevision(revision(tenant, "a", 2));
        await store.putRevision(revision(other, "c", 1));
        const listed = await store.listTemplates(tenant);
        expect(listed.map((t) => [t.name, t.revision])).toEqual([
          ["a", 2],
          ["b", 1],
        ]);
      });
    });

    describe("rate tokens", () => {
      const window = at(7);
      const expires = Date.parse(at(9)) / 1000;

      it("grants `limit` tokens per counter and window, then refuses without counting", async () => {
        const tenant = unique("tenant");
        const takes = [];
        for (let i = 0; i < 5; i++)
          takes.push(await store.takeRateTokens(tenant, window, { requests: 3 }, expires));
        expect(takes).toEqual([undefined, undefined, undefined, "requests", "requests"]);
        // A higher limit (the tenant's was raised) sees the count so far: the refusals did not add to it.
        expect(await store.takeRateTokens(tenant, window, { requests: 4 }, expires)).toBeUndefined();
        expect(await store.takeRateTokens(tenant, window, { requests: 4 }, expires)).toBe("requests");
      });

      it("takes a request and a submission in one write, or neither, naming the counter at its limit", async () => {
        const tenant = unique("tenant");
        const both = { requests: 3, submissions: 1 };
        expect(await store.takeRateTokens(tenant, window, both, expires)).toBeUndefined();
        expect(await store.takeRateTokens(tenant, window, both, expires)).toBe("submissions");
        expect(await store.takeRateTokens(tenant, window, { requests: 3 }, expires)).toBeUndefined();
        expect(await store.takeRateTokens(tenant, window, { requests: 2, submissions: 5 }, expires)).toBe(
          "requests",
        );
        // Two requests and one submission were counted: one more of each fits under 3 and 2.
        expect(
          await store.takeRateTokens(tenant, window, { requests: 3, submissions: 2 }, expires),
        ).toBeUndefined();
        expect(await store.takeRateTokens(tenant, window, { requests: 4, submissions: 2 }, expires)).toBe(
          "submissions",
        );
        expect(await store.takeRateTokens(tenant, window, { requests: 3 }, expires)).toBe("requests");
      });

      it("keeps tenants and windows apart", async () => {
        const [a, b] = [unique("tenant"), unique("tenant")];
        const one = { requests: 1 };
        expect(await store.takeRateTokens(a, window, one, expires)).toBeUndefined();
        expect(await store.takeRateTokens(a, window, one, expires)).toBe("requests");
        expect(await store.takeRateTokens(b, window, one, expires)).toBeUndefined();
        expect(await store.takeRateTokens(a, at(8), one, expires)).toBeUndefined();
      });

      it("grants exactly `limit` tokens to concurrent takers", async () => {
        const tenant = unique("tenant");
        const takes = await Promise.all(
          Array.from({ length: 25 }, () =>
            store.takeRateTokens(tenant, window, { submissions: 10 }, expires),
          ),
        );
        expect(takes.filter((refused) => refused === undefined)).toHaveLength(10);
      });
    });

    describe("event log", () => {
      /** The events of one change of `task` at `minute`: `types` in order, sharing the change's id. */
      const changeEvents = (task: Task, minute: number, ...types: EventType[]): DomainEvent[] =>
        types.map((type, i) => ({
          id: eventId(`${at(minute)}#${String(minute).padStart(9, "0")}`, i),
          type,
          time: at(minute),
          tenant: task.tenant,
          pool: task.pool,
          status: type.split(".")[1] as string,
          task_uuid: task.uuid,
          callback: "https://example.com/hook",
          ...(type.startsWith("run.") && { run_id: `${task.uuid}-r1`, attempt: 1, message: "exit 1" }),
        }));

      it("keeps each change's events in order and pages through them by any size", async () => {
        const task = makeTask();
        const changes = [
          changeEvents(task, 1, "task.created", "task.dispatched"),
          changeEvents(task, 2, "run.started", "task.running"),
          changeEvents(task, 3, "run.failed"),
          changeEvents(task, 4, "run.succeeded", "task.succeeded"),
        ];
        await store.commit({ tasks: [{ next: task }], events: changes[0] });
        for (const [i, events] of changes.slice(1).entries()) {
          await store.commit({
            tasks: [{ next: { ...task, version: i + 2 }, expectVersion: i + 1 }],
            events,
          });
        }
        const all = changes.flat();
        for (const size of [1, 2, 3, 7]) {
          const pages = await allPages((cursor) => store.listEvents(task.uuid, size, cursor));
          expect(pages.flatMap((p) => p.items)).toEqual(all);
          expect(pages.every((p) => p.total === all.length && p.items.length <= size)).toBe(true);
          expect(pages).toHaveLength(Math.ceil(all.length / size));
        }
      });

      it("refuses a cursor that is not an event's", async () => {
        const task = makeTask();
        await store.commit({ tasks: [{ next: task }], events: changeEvents(task, 1, "task.created") });
        await expectBadCursor(store.listEvents(task.uuid, 5, "bm90LWFuLWV2ZW50"));
      });
    });

    describe("workflows", () => {
      const node = (name: string) => ({
        task_id: `wft_${name}`,
        name,
        task: { pool: "p", prompt: name },
        inputs: {},
      });
      const definition = (id: string, tenant: string, fanOut: number) => ({
        def: { workflow_id: id, tenant, name: "w", version: 1, create_time: at(0), update_time: at(0) },
        nodes: [node("root"), ...Array.from({ length: fanOut }, (_, i) => node(`leaf${i}`))],
        edges: Array.from({ length: fanOut }, (_, i) => ({
          source: "root",
          target: `leaf${i}`,
          on: "succeeded" as const,
        })),
      });

      it("keeps a definition whole, and lists a tenant's newest first", async () => {
        const tenant = unique("t");
        const [first, second] = [unique("wf"), unique("wf")];
        await store.createWorkflow(definition(first, tenant, 2));
        const later = definition(second, tenant, 30);
        later.def.create_time = at(1);
        await store.createWorkflow(later);
        const got = await store.getWorkflow(second);
        expect(got?.def).toEqual(later.def);
        expect(await store.getWorkflowDef(second)).toEqual(later.def);
        expect(await store.getWorkflowDef(unique("wf"))).toBeUndefined();
        expect(got?.nodes).toHaveLength(31);
        expect(got?.edges).toHaveLength(30);
        expect((await store.listWorkflows(tenant)).map((d) => d.workflow_id)).toEqual([second, first]);
        await expect(store.createWorkflow(definition(first, tenant, 0))).rejects.toThrow(ConflictError);
        expect(await store.getWorkflow(unique("wf"))).toBeUndefined();
      });

      it("applies an edit on its version only, even one of more than a transaction's 100 items", async () => {
        const id = unique("wf");
        const { def } = definition(id, unique("t"), 120);
        await store.createWorkflow(definition(id, def.tenant, 120));
        await store.editWorkflow(def, at(2), {
          putNodes: [node("extra")],
          putEdges: [{ source: "leaf0", target: "extra", on: "always" }],
        });
        await expectConflict(store.editWorkflow(def, at(3), { deleteNodes: ["extra"] }), "workflow");
        const edited = (await store.getWorkflow(id)) as NonNullable<
          Awaited<ReturnType<typeof store.getWorkflow>>
        >;
        expect([
          edited.def.version,
          edited.def.update_time,
          edited.nodes.length,
          edited.edges.length,
        ]).toEqual([2, at(2), 122, 121]);
        // The root and its 120 edges: past one transaction, the edges go after it.
        await store.editWorkflow(edited.def, at(4), {
          deleteNodes: ["root"],
          deleteEdges: edited.edges.filter((e) => e.source === "root"),
        });
        const after = await store.getWorkflow(id);
        expect([after?.def.version, after?.nodes.length, after?.edges]).toEqual([
          3,
          121,
          [{ source: "leaf0", target: "extra", on: "always" }],
        ]);
      });
    });

    describe("a workflow run's stream", () => {
      const started = (runId: string) => ({
        id: `ev-${runId}`,
        type: "workflow.started" as const,
        time: at(0),
        tenant: "t",
        pool: "",
        status: "running",
        task_uuid: "",
        workflow: { run_id: runId, node: "" },
      });
      const newRun = async () => {
        const runId = unique("wfr");
        const run = {
          run_id: runId,
          workflow_id: unique("wf"),
          tenant: "t",
          status: "running" as const,
          nodes_total: 1,
          nodes_done: 0,
          nodes_failed: 0,
          create_time: at(0),
        };
        await store.createWorkflowRun(run, [], [], started(runId));
        return runId;
      };
      const message = (n: number) => ({ type: "finish_task" as const, time: at(n), data: { n } });

      it("numbers messages 1, 2, 3 with no gap however many are appended at once, each key once", async () => {
        const runId = await newRun();
        const appended = await Promise.all(
          Array.from({ length: 12 }, (_, i) => store.appendRunMessage(runId, `k${i % 6}`, message(i))),
        );
        const seqs = appended.map((a) => a.seq).filter((seq) => seq !== undefined);
        expect(seqs.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
        const stored = await store.listRunMessages(runId, 0);
        expect(stored.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(new Set(stored.map((m) => m.data.n as number)).size).toBe(6);
        expect((await store.listRunMessages(runId, 4)).map((m) => m.seq)).toEqual([5, 6]);
        expect(await store.listRunMessageKeys(runId)).toEqual(new Set(["k0", "k1", "k2", "k3", "k4", "k5"]));
      });

      it("counts each edge's arrival on its target once, keeping the first reason it cannot run", async () => {
        const runId = unique("wfr");
        const nodeRun = (name: string, parents_total: number) => ({
          run_id: runId,
          name,
          status: "pending" as const,
          parents_total,
          task: { prompt: name },
          inputs: {},
        });
        const edges = [
          { source: "a", target: "join", on: "succeeded" as const },
          { source: "ab", target: "join", on: "failed" as const },
          { source: "a", target: "other", on: "always" as const },
        ];
        await store.createWorkflowRun(
          {
            run_id: runId,
            workflow_id: unique("wf"),
            tenant: "t",
            status: "running",
            nodes_total: 4,
            nodes_done: 0,
            nodes_failed: 0,
            create_time: at(0),
          },
          [nodeRun("a", 0), nodeRun("ab", 0), nodeRun("join", 2), nodeRun("other", 1)],
          edges,
          started(runId),
        );
        // "a"'s out-edges, not "ab"'s (whose name starts the same).
        expect((await store.listRunEdges(runId, "a")).map((e) => e.target).sort()).toEqual(["join", "other"]);
        const [aJoin, abJoin] = edges as [(typeof edges)[0], (typeof edges)[0]];
        expect(await store.arriveAtNodeRun(runId, aJoin, "succeeded")).toMatchObject({ arrived_count: 1 });
        expect(await store.arriveAtNodeRun(runId, aJoin, "succeeded")).toMatchObject({ arrived_count: 1 });
        const joined = await store.arriveAtNodeRun(runId, abJoin, "succeeded", "ab succeeded, on failed");
        await store.arriveAtNodeRun(runId, abJoin, "succeeded", "again");
        expect(await store.getNodeRun(runId, "join")).toMatchObject({
          arrived_count: 2,
          parents_total: 2,
          blocked: "ab succeeded, on failed",
        });
        expect(joined).toMatchObject({ arrived_count: 2, blocked: "ab succeeded, on failed" });
        const got = await store.getWorkflowRun(runId);
        expect(got?.nodes).toHaveLength(4);
        expect(got?.edges.map((e) => [e.source, e.target, e.arrived])).toEqual([
          ["a", "join", "succeeded"],
          ["a", "other", undefined],
          ["ab", "join", "succeeded"],
        ]);
      });

      it("keeps a run's connections with their cursors, counts them as watchers, and forgets each once", async () => {
        const runId = await newRun();
        const connection = (id: string, expires_at: number) => ({
          connection_id: id,
          cursor: 0,
          connected_at: at(0),
          expires_at,
        });
        expect(await store.appendRunMessage(runId, "a", message(1))).toEqual({ seq: 1, watchers: 0 });
        await store.addStreamConnection(runId, connection("c1", 2_000));
        await store.addStreamConnection(runId, connection("c2", 1_000));
        await expect(store.addStreamConnection(unique("wfr"), connection("c3", 2_000))).rejects.toThrow();
        expect(await store.appendRunMessage(runId, "b", message(2))).toEqual({ seq: 2, watchers: 2 });
        expect(await store.appendRunMessage(runId, "b", message(3))).toEqual({ watchers: 2 });
        // c2 has expired by 1,500 (DynamoDB's TTL deletes it late).
        expect((await store.listStreamConnections(runId, 1_500)).map((c) => c.connection_id)).toEqual(["c1"]);
        expect(await store.moveStreamCursor(runId, "c1", 0, 2)).toBe(true);
        expect(await store.moveStreamCursor(runId, "c1", 0, 1)).toBe(false);
        expect(await store.moveStreamCursor(runId, "gone", 0, 1)).toBe(false);
        expect((await store.listStreamConnections(runId, 0)).map((c) => [c.connection_id, c.cursor])).toEqual(
          [
            ["c1", 2],
            ["c2", 0],
          ],
        );
        await store.removeStreamConnection(runId, "c2");
        await store.removeStreamConnection(runId, "c2");
        expect(await store.getWorkflowRunRecord(runId)).toMatchObject({ watchers: 1 });
        expect(await store.appendRunMessage(runId, "c", message(4))).toEqual({ seq: 3, watchers: 1 });
      });
    });

    describe("workers", () => {
      const report = (worker_id: string, live_until: number, jobs: string[] = []) => ({
        worker_id,
        pool: "p",
        slots: 2,
        running: jobs.length,
        jobs,
        started_at: at(0),
        last_seen: at(1),
        live_until,
        expires_at: live_until,
      });

      it("writes each report over a worker's record and hides the expired ones", async () => {
        const [live, gone] = [unique("w"), unique("w")];
        await store.reportWorker(report(live, 1000), false);
        expect(await store.reportWorker(report(live, 2000, ["r1"]), false)).toEqual(
          report(live, 2000, ["r1"]),
        );
        await store.reportWorker(report(gone, 900), false);
        const seen = (await store.listWorkers(1000)).filter((w) => [live, gone].includes(w.worker_id));
        expect(seen).toEqual([report(live, 2000, ["r1"])]);
      });

      it("keeps a drain across reports, and a registration until the worker is removed", async () => {
        const fargate = unique("w");
        await store.reportWorker(report(fargate, 2000), false);
        expect(await store.drainWorker(fargate)).toMatchObject({ worker_id: fargate, draining: true });
        expect(await store.reportWorker(report(fargate, 2100), false)).toMatchObject({ draining: true });
        expect(await store.drainWorker(unique("w"))).toBeUndefined();

        const id = unique("wrk");
        const registered = {
          worker_id: id,
          pool: "p",
          slots: 3,
          running: 0,
          live_until: 0,
          registered_at: at(0),
          host: "gpu-1",
          resources: { gpus: 1 },
          key_hash: unique("hash"),
        };
        const key = {
          key_id: unique("key"),
          key_hash: registered.key_hash,
          worker_id: id,
          pool: "p",
          create_time: at(0),
        };
        await store.registerWorker(registered, key);
        await expect(store.registerWorker(registered, key)).rejects.toThrow();
        expect(await store.findApiKey(key.key_hash)).toEqual(key);
        // Its report leaves the registration's slots, host and resources; it has no expiry.
        const { slots: _, expires_at: __, ...fields } = report(id, 3000, ["r2"]);
        expect(await store.reportWorker(fields, true)).toEqual({ ...registered, ...fields, slots: 3 });
        expect((await store.listWorkers(5000)).map((w) => w.worker_id)).toContain(id);

        await store.removeWorker((await store.getWorker(id)) as WorkerRecord);
        expect(await store.getWorker(id)).toBeUndefined();
        expect(await store.findApiKey(key.key_hash)).toBeUndefined();
        // A removed worker's report does not bring it back.
        expect(await store.reportWorker(fields, true)).toBeUndefined();
        expect(await store.getWorker(id)).toBeUndefined();
      });
    });
  });
}
