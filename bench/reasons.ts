/**
 * Why each request of a plain task's lifecycle is there, matched on where it is sent from and its tally key
 * (`service operation detail`, the detail naming the items a DynamoDB request touches). `floor` marks the
 * six requests any design of this shape needs.
 */
const REASONS: { where: string; key: RegExp; reason: string }[] = [
  {
    where: "api",
    key: /^DynamoDB GetItem (KEY|TENANT)$/,
    reason: "authenticate the API key and load its tenant's limits (cached in memory; misses only)",
  },
  {
    where: "api",
    key: /^DynamoDB UpdateItem RATE$/,
    reason:
      "tenant limits: the request and the submission counted in one write (one item per tenant and minute)",
  },
  {
    where: "api",
    key: /^DynamoDB TransactWriteItems Put:TASK\+Put:RUN\+Update:POOL(\+Update:CKEY)?(\+Put:IDEM)?(\+Put:EVENT)?$/,
    reason:
      "floor: store the task already dispatched, with its run, a pool slot (taken only while no task waits) and its events",
  },
  {
    where: "api",
    key: /^DynamoDB TransactWriteItems Put:TASK\+Update:POOL\+Update:QUEUED(\+Put:EVENT)?$/,
    reason: "the pool was full or had tasks waiting: store the task queued, counted in its pool and tenant",
  },
  {
    where: "api",
    key: /^DynamoDB Query index ready$/,
    reason: "the task was queued: admission reads the pool's ready queue, highest priority first",
  },
  { where: "api", key: /^SQS SendMessage$/, reason: "floor: the dispatch message on the pool queue" },
  { where: "worker", key: /^SQS ReceiveMessage hit$/, reason: "floor: the worker receives the dispatch" },
  {
    where: "worker",
    key: /^DynamoDB GetItem (TASK|RUN)$/,
    reason: "claim: the message's snapshot was no longer current, so the claim reads task and run",
  },
  {
    where: "worker",
    key: /^DynamoDB TransactWriteItems Put:TASK\+Put:RUN(\+Put:EVENT)?$/,
    reason: "floor: claim, task and run running (with their events)",
  },
  {
    where: "worker",
    key: /^SQS DeleteMessage(Batch)?$/,
    reason: "floor: the messages of a receive are done with once claimed (deleted together)",
  },
  { where: "worker", key: /^S3 PutObject$/, reason: "a log longer than 4,000 characters, kept in S3" },
  {
    where: "worker",
    key: /^DynamoDB TransactWriteItems Put:TASK\+Put:RUN\+Update:POOL(\+Put:EVENT)?$/,
    reason: "floor: settle, task and run succeeded, the pool slot given back",
  },
  {
    where: "worker",
    key: /^DynamoDB Query index ready$/,
    reason: "a slot freed where tasks waited: admission reads the next queued task",
  },
  {
    where: "worker",
    key: /^SQS SendMessage$/,
    reason: "the worker admitted the next task before its own submit did (a race, not this task's cost)",
  },
];

REASONS.push(
  {
    where: "events",
    key: /^SNS PublishBatch$/,
    reason: "the events relay publishes the outbox events from the table's stream (up to 10 a call)",
  },
  {
    where: "callbacks",
    key: /^SQS ReceiveMessage hit$/,
    reason: "a run-end event of a task with a callback URL (a plain task's never reach the callback queue)",
  },
  {
    where: "callbacks",
    key: /^SQS DeleteMessageBatch$/,
    reason: "the callback function's event source deletes the handled batch",
  },
);

export function reasonFor(where: string, key: string): string {
  return REASONS.find((r) => r.where === where && r.key.test(key))?.reason ?? "";
}

/** Whether a request is one of the floor's six. */
export const isFloor = (where: string, key: string) => reasonFor(where, key).startsWith("floor:");
