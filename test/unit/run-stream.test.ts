import { describe, expect, it } from "vitest";
import { frameOf, pushRunStream, STREAM_FRAME_BYTES, watchRunStream } from "../../core/run-stream.ts";
import type { RunMessage } from "../../core/workflow-runs.ts";
import { streamConnectHandler } from "../../functions/run-stream.ts";
import { lambdaContext } from "../../local/sqs-event-source.ts";
import { memoryDeps } from "../support/memory-deps.ts";

const CONFIG = "pools:\n  - name: p\n    tool: claude\n    account: a\n    max_concurrency: 1\n";

async function runWithMessages(types: RunMessage["type"][]) {
  const memory = memoryDeps(CONFIG);
  const { deps } = memory;
  const runId = "wfr_0000000000000001";
  const time = deps.clock.now().toISOString();
  await deps.workflowRuns.createWorkflowRun(
    {
      run_id: runId,
      workflow_id: "wf_1",
      tenant: "t",
      status: "running",
      nodes_total: 1,
      nodes_done: 0,
      nodes_failed: 0,
      create_time: time,
    },
    [],
    [],
    {
      id: "e1",
      type: "workflow.started",
      time,
      tenant: "t",
      pool: "",
      status: "running",
      task_uuid: "",
      workflow: { run_id: runId, node: "" },
    },
  );
  const say = (type: RunMessage["type"], i: number) =>
    deps.workflowRuns.appendRunMessage(runId, `${type}#${i}`, { type, time, data: { name: `n${i}` } });
  for (const [i, type] of types.entries()) await say(type, i);
  return { ...memory, runId, say };
}

/** What a client keeps of the frames it got: each seq once, dropping one it has had. */
const kept = (frames: string[] = []) => {
  const seqs: number[] = [];
  for (const { seq } of frames.map((f) => JSON.parse(f) as { seq: number })) {
    if (seq > (seqs.at(-1) ?? 0)) seqs.push(seq);
  }
  return seqs;
};

describe("a run's stream pushed to its connections", () => {
  it("sends a connection what came after its cursor, in order, once, then only what is new", async () => {
    const { deps, streams, workflowQueue, runId, say } = await runWithMessages([
      "start_task",
      "finish_task",
      "start_task",
    ]);
    streams.open("c1");
    await watchRunStream(deps, runId, "c1", 1);
    expect(workflowQueue.sent).toEqual([
      { message: { stream_wake: { run_id: runId, connection_id: "c1" } }, delaySeconds: 0 },
    ]);
    await pushRunStream(deps, runId, "c1");
    expect(streams.frames.get("c1")?.map((f) => JSON.parse(f))).toEqual([
      { type: "finish_task", seq: 2, data: { name: "n1" } },
      { type: "start_task", seq: 3, data: { name: "n2" } },
    ]);
    await pushRunStream(deps, runId);
    expect(streams.frames.get("c1")).toHaveLength(2);
    await say("finish_task", 3);
    await Promise.all([pushRunStream(deps, runId), pushRunStream(deps, runId)]);
    expect(kept(streams.frames.get("c1"))).toEqual([2, 3, 4]);
    const [connection] = await deps.workflowRuns.listStreamConnections(runId, 0);
    expect(connection?.cursor).toBe(4);
  });

  it("closes and forgets a connection after finish_workflow", async () => {
    const { deps, streams, runId } = await runWithMessages(["start_task", "finish_task", "finish_workflow"]);
    streams.open("c1");
    await watchRunStream(deps, runId, "c1", 0);
    await pushRunStream(deps, runId);
    expect(kept(streams.frames.get("c1"))).toEqual([1, 2, 3]);
    expect(streams.closed).toEqual(new Set(["c1"]));
    expect(await deps.workflowRuns.listStreamConnections(runId, 0)).toEqual([]);
    expect(await deps.workflowRuns.getWorkflowRunRecord(runId)).toMatchObject({ watchers: 0 });
  });

  it("waits for a connection that is still opening, and forgets one that is gone", async () => {
    const { deps, streams, clock, runId } = await runWithMessages(["start_task"]);
    await watchRunStream(deps, runId, "opening", 0);
    setTimeout(() => streams.open("opening"), 300);
    await pushRunStream(deps, runId);
    expect(kept(streams.frames.get("opening"))).toEqual([1]);

    await watchRunStream(deps, runId, "gone", 0);
    clock.advance(10_000);
    await pushRunStream(deps, runId);
    expect((await deps.workflowRuns.listStreamConnections(runId, 0)).map((c) => c.connection_id)).toEqual([
      "opening",
    ]);
    expect(await deps.workflowRuns.getWorkflowRunRecord(runId)).toMatchObject({ watchers: 1 });
  });

  it("keeps a frame under API Gateway's 128 KB, sending a message too big for it without its outputs", () => {
    const small = { type: "finish_task" as const, seq: 1, time: "", data: { outputs: { result: "x" } } };
    expect(JSON.parse(frameOf(small))).toEqual({
      type: "finish_task",
      seq: 1,
      data: { outputs: { result: "x" } },
    });
    const big = { ...small, data: { name: "n", outputs: { result: "x".repeat(STREAM_FRAME_BYTES) } } };
    expect(JSON.parse(frameOf(big))).toEqual({
      type: "finish_task",
      seq: 1,
      data: { name: "n", truncated: true },
    });
  });
});

describe("the WebSocket API's $connect", () => {
  /** A $connect event as API Gateway sends it (headers as the client wrote them). */
  const connectEvent = (headers: Record<string, string>, query: Record<string, string>) => ({
    headers: {
      Host: "abc123.execute-api.us-east-1.amazonaws.com",
      "Sec-WebSocket-Version": "13",
      ...headers,
    },
    multiValueHeaders: {},
    queryStringParameters: query,
    requestContext: {
      routeKey: "$connect",
      eventType: "CONNECT",
      connectionId: "L0SM9cOFvHcCIhw=",
      stage: "v2",
      apiId: "abc123",
    },
    isBase64Encoded: false,
  });

  it("opens a run's stream for its key (a subprotocol named in the answer), keeps it and asks for a push", async () => {
    const { deps, workflowQueue, runId } = await runWithMessages(["start_task"]);
    const connect = streamConnectHandler(async () => deps);
    const query = { workflow_id: "wf_1", run_id: runId, after: "0" };
    const answer = await connect(
      connectEvent({ "Sec-WebSocket-Protocol": "key, admin" }, query),
      lambdaContext("switchyard-run-stream"),
    );
    expect(answer).toEqual({ statusCode: 200, headers: { "Sec-WebSocket-Protocol": "key" } });
    expect(workflowQueue.sent.map((s) => s.message)).toEqual([
      { stream_wake: { run_id: runId, connection_id: "L0SM9cOFvHcCIhw=" } },
    ]);
    const bearer = await connect(
      { ...connectEvent({ Authorization: "Bearer admin" }, query), requestContext: { connectionId: "c2=" } },
      lambdaContext("switchyard-run-stream"),
    );
    expect(bearer).toEqual({ statusCode: 200 });
    expect(
      (await deps.workflowRuns.listStreamConnections(runId, 0)).map((c) => c.connection_id).sort(),
    ).toEqual(["L0SM9cOFvHcCIhw=", "c2="]);
  });

  it("refuses a bad key, a bad after, and another workflow's run, in the API's envelope, keeping nothing", async () => {
    const { deps, workflowQueue, runId } = await runWithMessages(["start_task"]);
    const connect = streamConnectHandler(async () => deps);
    const refusal = async (headers: Record<string, string>, query: Record<string, string>) => {
      const { statusCode, body } = await connect(
        connectEvent(headers, query),
        lambdaContext("switchyard-run-stream"),
      );
      return [statusCode, JSON.parse(body ?? "{}").code, JSON.parse(body ?? "{}").message];
    };
    const admin = { Authorization: "Bearer admin" };
    expect(await refusal({ Authorization: "Bearer wrong" }, { workflow_id: "wf_1", run_id: runId })).toEqual([
      401,
      "1008",
      expect.any(String),
    ]);
    expect(await refusal(admin, { workflow_id: "wf_1", run_id: runId, after: "x" })).toEqual([
      400,
      "1001",
      expect.stringContaining("after"),
    ]);
    expect(await refusal(admin, { workflow_id: "wf_2", run_id: runId })).toEqual([
      404,
      "1015",
      expect.any(String),
    ]);
    expect(await deps.workflowRuns.listStreamConnections(runId, 0)).toEqual([]);
    expect(workflowQueue.sent).toEqual([]);
  });
});
