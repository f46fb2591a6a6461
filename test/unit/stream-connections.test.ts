import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  ForbiddenException,
  GoneException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { SqsWorkflowQueue } from "../../adapters/aws/sqs-workflow-queue.ts";
import { ApiGatewayStreamConnections } from "../../adapters/aws/stream-connections.ts";
import { workflowQueueMessageOf } from "../../core/workflow-queue.ts";

const ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com/v2";
const QUEUE = "https://sqs.us-east-1.amazonaws.com/1/switchyard-workflows";
const gone = () => new GoneException({ message: "gone", $metadata: {} });

describe("runs' stream connections on API Gateway's management API", () => {
  const api = mockClient(ApiGatewayManagementApiClient);
  afterEach(() => api.reset());
  const connections = () =>
    new ApiGatewayStreamConnections(
      new ApiGatewayManagementApiClient({ region: "us-east-1", endpoint: ENDPOINT }),
    );

  it("sends a frame with PostToConnection, and answers false for a connection that is gone", async () => {
    api.on(PostToConnectionCommand, { ConnectionId: "open=" }).resolves({});
    api.on(PostToConnectionCommand, { ConnectionId: "left=" }).rejects(gone());
    const streams = connections();
    expect(await streams.send("open=", '{"type":"start_task","seq":1}')).toBe(true);
    expect(await streams.send("left=", "{}")).toBe(false);
    const [first] = api.commandCalls(PostToConnectionCommand).map((c) => c.args[0].input);
    expect(first?.ConnectionId).toBe("open=");
    expect(new TextDecoder().decode(first?.Data as Uint8Array)).toBe('{"type":"start_task","seq":1}');
  });

  it("lets any other refusal through (the push is retried with its event)", async () => {
    api.on(PostToConnectionCommand).rejects(new ForbiddenException({ message: "no", $metadata: {} }));
    await expect(connections().send("c=", "{}")).rejects.toThrow(ForbiddenException);
  });

  it("closes with DeleteConnection, a connection already gone being closed too", async () => {
    api.on(DeleteConnectionCommand, { ConnectionId: "left=" }).rejects(gone());
    const streams = connections();
    await streams.close("open=");
    await streams.close("left=");
    expect(api.commandCalls(DeleteConnectionCommand).map((c) => c.args[0].input)).toEqual([
      { ConnectionId: "open=" },
      { ConnectionId: "left=" },
    ]);
  });
});

describe("the workflows function's own queue", () => {
  const sqs = mockClient(SQSClient);
  afterEach(() => sqs.reset());

  it("sends a stream's wake at once, and a node's retry delayed, as the function reads them", async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: "m1" });
    const queue = new SqsWorkflowQueue(new SQSClient({ region: "us-east-1" }), QUEUE);
    await queue.send({ stream_wake: { run_id: "wfr_1", connection_id: "open=" } });
    await queue.send({ node_retry: { run_id: "wfr_1", node: "B", attempt: 2 } }, 20);
    const sent = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    expect(sent.map((m) => [m.QueueUrl, m.DelaySeconds])).toEqual([
      [QUEUE, undefined],
      [QUEUE, 20],
    ]);
    expect(sent.map((m) => workflowQueueMessageOf(String(m.MessageBody)))).toEqual([
      { stream_wake: { run_id: "wfr_1", connection_id: "open=" } },
      { node_retry: { run_id: "wfr_1", node: "B", attempt: 2 } },
    ]);
    // An event (the topic's envelope) is neither.
    expect(workflowQueueMessageOf(JSON.stringify({ Type: "Notification", Message: "{}" }))).toBeUndefined();
  });
});
