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
      "tenant limits: the request-rate and the submission-rate counters (one item per tenant and minute each)",
  },
  {
    where: "api",
    key: /^DynamoDB Query index by-tenant$/,
    reason: "tenant limits: max_queued_tasks counts the tenant's queued tasks (reads the whole queued range)",
  },
  {
    where: "api",
    key: /^DynamoDB (PutItem TASK|TransactWriteItems Put:TASK(\+Put:EVENT)*)$/,
    reason: "floor: store the task, queued (with its task.created event, if events are on)",
  },
  {
    where: "api",
    key: /^DynamoDB GetItem POOL$/,
    reason: "admission reads the pool counter to know how many slots are free",
  },
  {
    where: "api",
    key: /^DynamoDB Query index ready$/,
    reason: "admission reads the pool's ready queue, so that higher priorities go first",
  },
  {
    where: "api",
    key: /^DynamoDB TransactWriteItems Put:TASK\+Put:RUN\+Update:POOL/,
    reason: "admit: task dispatched, a new run, a pool slot taken, in one transaction",
  },
  { where: "api", key: /^SQS SendMessage$/, reason: "floor: the dispatch message on the pool queue" },
  {
    where: "api",
    key: /^DynamoDB GetItem TASK$/,
    reason: "submit lost the admission race (the tick or a worker admitted it): re-read for the answer",
  },
  { where: "worker", key: /^SQS ReceiveMessage hit$/, reason: "floor: the worker receives the dispatch" },
  {
    where: "worker",
    key: /^DynamoDB GetItem TASK$/,
    reason: "claim reads the task: is this run still current and dispatched; and its prompt and files",
  },
  { where: "worker", key: /^DynamoDB GetItem RUN$/, reason: "claim reads the run, for its version" },
  {
    where: "worker",
    key: /^DynamoDB TransactWriteItems Put:TASK\+Put:RUN(\+Put:EVENT)*$/,
    reason: "floor: claim, task and run running (with their events)",
  },
  { where: "worker", key: /^SQS DeleteMessage$/, reason: "floor: the message is done with once claimed" },
  { where: "worker", key: /^S3 PutObject$/, reason: "the run's full log, kept in S3" },
  {
    where: "worker",
    key: /^DynamoDB TransactWriteItems Put:TASK\+Put:RUN(\+Put:EVENT)*\+Update:POOL$/,
    reason: "floor: settle, task and run succeeded, the pool slot given back",
  },
  {
    where: "worker",
    key: /^DynamoDB GetItem POOL$/,
    reason: "a slot freed: admission reads the pool counter before admitting the next task",
  },
  {
    where: "worker",
    key: /^DynamoDB Query index ready$/,
    reason: "a slot freed: admission looks for the next queued task (none here)",
  },
  {
    where: "worker",
    key: /^(SQS SendMessage|DynamoDB TransactWriteItems Put:TASK\+Put:RUN\+Update:POOL.*)$/,
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
    reason:
      "the callback queue gets every run-end event, a plain task's too (it has no URL: nothing is sent)",
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
