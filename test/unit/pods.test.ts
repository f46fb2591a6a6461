import { describe, expect, it } from "vitest";
import { decodeDispatch } from "../../core/admission.ts";
import { claimRun } from "../../core/execution.ts";
import { launchPod, settlePod } from "../../core/pod-runs.ts";
import { ECS_OVERRIDES_MAX_CHARS, podJob, podQuotas, podSpecOf } from "../../core/pods.ts";
import { submitTaskSchema } from "../../core/requests.ts";
import { cancelTask, submitTask } from "../../core/tasks.ts";
import { createTemplate } from "../../core/templates.ts";
import { tick } from "../../core/tick.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const CONFIG = `pools:
  - { name: pods, tool: container, max_concurrency: 1, lease_seconds: 60, retry: { base_seconds: 1, max_seconds: 1 } }
`;
const job = (fields: object) => podJob.parse({ image: "alpine:3", ...fields });

describe("a pod's size", () => {
  it("is Fargate's smallest by default, else the quotas' over the template's, in CPU units and MiB", () => {
    expect(podSpecOf(job({}), undefined)).toMatchObject({ cpu: 256, memory: 512 });
    expect(podSpecOf(job({ cpu: 1 }), undefined)).toMatchObject({ cpu: 1024, memory: 2048 });
    const quotas = podQuotas.parse({ cpu: "500m", memory: "2Gi" });
    expect(podSpecOf(job({ cpu: 4, memory: 8192 }), quotas)).toMatchObject({ cpu: 512, memory: 2048 });
    expect(podSpecOf(job({}), podQuotas.parse({ cpu: 0.25, memory: "1024Mi" }))).toMatchObject({
      cpu: 256,
      memory: 1024,
    });
  });

  it("must be one Fargate runs, named by the field it came from", () => {
    expect(() => podSpecOf(job({ cpu: 3 }), undefined)).toThrow(
      "template: cpu 3 vCPU is not a Fargate size: give 0.25, 0.5, 1, 2, 4, 8 or 16",
    );
    expect(() => podSpecOf(job({}), podQuotas.parse({ cpu: 16, memory: 8192 }))).toThrow(
      /^quotas: memory 8192 MiB does not go with 16 vCPU on Fargate: give one of 32768, 40960, /,
    );
    expect(() => podSpecOf(job({}), podQuotas.parse({ gpu: 1 }))).toThrow(/^quotas\.gpu: /);
    expect(podQuotas.safeParse({ memory: "2G" }).success).toBe(false);
    expect(podQuotas.safeParse({ cpu: "fast" }).success).toBe(false);
  });

  it("keeps a run's args and env within what ECS takes per RunTask, giving the size", () => {
    expect(() =>
      podSpecOf(job({ args: ["x".repeat(ECS_OVERRIDES_MAX_CHARS - 400)] }), undefined),
    ).not.toThrow();
    expect(() => podSpecOf(job({ env: { BIG: "x".repeat(ECS_OVERRIDES_MAX_CHARS) } }), undefined)).toThrow(
      /^template: the pod's args and env take 8\d{3} characters; ECS takes 8192 per run$/,
    );
  });
});

/** A stack on the in-memory fakes with a `sleep` pod template, and a submission of it. */
async function podStack(timeout = 600) {
  const memory = memoryDeps(CONFIG);
  const { deps, queue } = memory;
  await createTemplate(deps, ADMIN, {
    name: "sleep",
    type: "pod",
    schema: `image: busybox\ncommand: ["sleep", "{{ value.s }}"]\ntimeout: ${timeout}\n`,
    extra: {},
  });
  const submit = async () => {
    const input = submitTaskSchema.parse({ template: "sleep", value: { s: 5 }, max_attempts: 2 });
    return (await submitTask(deps, ADMIN, input)).task;
  };
  /** The dispatch the admission sent, as the launcher receives it. */
  const dispatch = async () => {
    const [message] = await queue.receive("pods", 1, 0);
    if (!message) throw new Error("no dispatch on the pool queue");
    return decodeDispatch(message.body) as NonNullable<ReturnType<typeof decodeDispatch>>;
  };
  return { ...memory, submit, dispatch };
}

describe("a pod's run", () => {
  it("is claimed and started once per dispatch, gets its container and deadline, and settles from its end", async () => {
    const { deps, containers, clock, submit, dispatch } = await podStack();
    const task = await submit();
    expect(task).toMatchObject({ status: "dispatched", tool: "container", pod: { command: ["sleep", "5"] } });
    const message = await dispatch();
    expect(await launchPod(deps, message)).toBe("started");
    // A repeated dispatch starts nothing more.
    expect(await launchPod(deps, message)).toMatch(/^dropped: stale: task is running/);
    expect([...containers.launches.values()]).toEqual([
      expect.objectContaining({
        pool: "pods",
        taskUuid: task.uuid,
        runId: task.run_id,
        containerId: "container-1",
      }),
    ]);
    const running = await deps.tasks.getTask(task.uuid);
    expect(running?.status).toBe("running");
    expect(running?.lease_expires_at).toBe(new Date(clock.now().getTime() + (600 + 60) * 1000).toISOString());
    expect((await deps.tasks.getRun(task.uuid, task.run_id as string))?.container_id).toBe("container-1");

    containers.logs.set("container-1", "line 1\nall done\n");
    const stopped = {
      runId: task.run_id as string,
      containerId: "container-1",
      exitCode: 0,
      durationMs: 5000,
    };
    expect(await settlePod(deps, stopped)).toBe("settled");
    // EventBridge delivers at least once: the same end again changes nothing.
    expect(await settlePod(deps, stopped)).toBe("dropped");
    const done = await deps.tasks.getTask(task.uuid);
    expect(done).toMatchObject({ status: "succeeded", result: { exit_code: 0, output: "line 1\nall done" } });
    expect(await deps.tasks.getRun(task.uuid, task.run_id as string)).toMatchObject({
      status: "succeeded",
      latency_ms: 5000,
      output_tail: "line 1\nall done\n",
    });
    expect((await deps.counters.poolState("pods")).active).toBe(0);
  });

  it("fails (to be retried) when its container cannot start, giving ECS's reason, and frees its slot", async () => {
    const { deps, containers, submit, dispatch } = await podStack();
    const task = await submit();
    containers.failNextStart = "ECS started no task: RESOURCE:FARGATE";
    expect(await launchPod(deps, await dispatch())).toBe("not started");
    expect(await deps.tasks.getTask(task.uuid)).toMatchObject({
      status: "scheduled",
      error_message: "the pod could not start: ECS started no task: RESOURCE:FARGATE",
    });
    expect((await deps.counters.poolState("pods")).active).toBe(0);
  });

  it("is stopped by the tick past its deadline and ends timed out; its late end changes nothing", async () => {
    const { deps, containers, clock, submit, dispatch } = await podStack(30);
    const task = await submit();
    await launchPod(deps, await dispatch());
    clock.advance(89_000);
    await tick(deps);
    expect(containers.stops).toEqual([]);
    clock.advance(2_000);
    await tick(deps);
    expect(containers.stops).toEqual([{ pool: "pods", runId: task.run_id, reason: "its deadline passed" }]);
    expect(await deps.tasks.getTask(task.uuid)).toMatchObject({
      status: "scheduled",
      error_message: "timed out after 30 s: the pod was stopped",
    });
    const late = { runId: task.run_id as string, containerId: "container-1", exitCode: 143, durationMs: 1 };
    expect(await settlePod(deps, late)).toBe("dropped");
  });

  it("whose launch was never recorded is stopped and lost when its claim's lease passes", async () => {
    const { deps, containers, clock, submit, dispatch } = await podStack();
    const task = await submit();
    // The launcher claimed the run and died before it started (or recorded) the container.
    expect((await claimRun(deps, await dispatch(), "pod-launcher")).claimed).toBe(true);
    clock.advance(61_000);
    await tick(deps);
    expect(containers.stops.map((s) => s.runId)).toEqual([task.run_id]);
    const run = await deps.tasks.getRun(task.uuid, task.run_id as string);
    expect(run).toMatchObject({
      status: "lost",
      error: expect.stringMatching(/^the pod's launch was not recorded/),
    });
    expect((await deps.tasks.getTask(task.uuid))?.status).toBe("scheduled");
  });

  it("is stopped when its task is canceled, which keeps the pool's slot until the pod's end is reported", async () => {
    const { deps, containers, submit, dispatch } = await podStack();
    const task = await submit();
    await launchPod(deps, await dispatch());
    expect((await cancelTask(deps, ADMIN, task.uuid)).status).toBe("canceled");
    expect(containers.stops).toEqual([{ pool: "pods", runId: task.run_id, reason: "canceled" }]);
    expect((await deps.counters.poolState("pods")).active).toBe(1);
    const stopped = {
      runId: task.run_id as string,
      containerId: "container-1",
      exitCode: 143,
      durationMs: 9,
    };
    expect(await settlePod(deps, stopped)).toBe("released");
    expect((await deps.counters.poolState("pods")).active).toBe(0);
    expect((await deps.tasks.getTask(task.uuid))?.status).toBe("canceled");
  });

  it("canceled while its container was starting is stopped once the container exists", async () => {
    const { deps, containers, submit, dispatch } = await podStack();
    const task = await submit();
    const start = containers.start.bind(containers);
    containers.start = async (launch) => {
      await cancelTask(deps, ADMIN, task.uuid);
      return start(launch);
    };
    expect(await launchPod(deps, await dispatch())).toBe("started");
    // The cancel's stop came before the container; the launch's record stops it after.
    expect(containers.stops.map((s) => s.reason)).toEqual(["canceled", "canceled"]);
    expect(containers.launches.size).toBe(1);
  });
});
