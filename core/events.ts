import type { Task } from "./records.ts";

/**
 * Event types: `task.<status>` for task transitions, `run.<status>` for run transitions, and
 * `workflow.started` for a workflow run stored (its first nodes are submitted from it).
 */
export type EventType = `task.${string}` | `run.${string}` | `workflow.${string}`;

/**
 * One transition, as published to SNS (the message body, JSON) and kept for GET /v2/tasks/{uuid}/events.
 * SNS message attributes (eventAttributes) carry tenant, pool, status, type and has_callback, so
 * subscribers can filter.
 */
export interface DomainEvent {
  /** Unique and ordered within a task: see eventId. */
  id: string;
  type: EventType;
  time: string;
  tenant: string;
  pool: string;
  status: string;
  task_uuid: string;
  name?: string;
  run_id?: string;
  occurrence?: number;
  attempt?: number;
  /** The error of a failed run, or a short note. */
  message?: string;
  /** The task's callback URL, for the callback deliverer. */
  callback?: string;
  /** A workflow node's task: its run and node (core/workflow-runs.ts follows them). */
  workflow?: Task["workflow"];
  /** task.created: how its pool was chosen, if it named only a tool, and the wait predicted for it. */
  routed_by?: Task["routed_by"];
  predicted_wait?: Task["predicted_wait"];
}

/** Run statuses whose event means "a run ended": these are what callbacks receive. */
export const RUN_END_TYPES: readonly EventType[] = [
  "run.succeeded",
  "run.failed",
  "run.lost",
  "run.canceled",
];

/** The SNS message attributes of an event: what subscription filter policies can match (none empty). */
export const eventAttributes = (event: DomainEvent): Record<string, string> =>
  Object.fromEntries(
    Object.entries({
      tenant: event.tenant,
      pool: event.pool,
      status: event.status,
      type: event.type,
      has_callback: event.callback ? "true" : "false",
      workflow: event.workflow ? "true" : "false",
    }).filter(([, value]) => value !== ""),
  );

/**
 * The callback queue's filter policy: run-end events of tasks that have a callback URL. A task without
 * one costs the callback path nothing.
 */
export const CALLBACK_FILTER_POLICY: Readonly<Record<string, readonly string[]>> = {
  type: RUN_END_TYPES,
  has_callback: ["true"],
};

/**
 * The workflows function's queue's filter policy: workflow runs stored, and the starts and ends of their
 * nodes' tasks. A task of no workflow costs the workflows path nothing.
 */
export const WORKFLOW_FILTER_POLICY: Readonly<Record<string, readonly string[]>> = {
  type: ["workflow.started", "task.running", "task.succeeded", "task.failed", "task.canceled"],
  workflow: ["true"],
};

/** The webhook body a task's callback URL receives when a run ends. */
export interface CallbackBody {
  name: string | null;
  uuid: string;
  runid: string | null;
  status: string;
  message: string | null;
}

export const callbackBody = (event: DomainEvent): CallbackBody => ({
  name: event.name ?? null,
  uuid: event.task_uuid,
  runid: event.run_id ?? null,
  status: event.status,
  message: event.message ?? null,
});

/** Events are kept this long (DynamoDB TTL), for clients catching up with GET /v2/tasks/{uuid}/events. */
export const EVENT_RETENTION_DAYS = 30;

/** A change's id: `<time>#<task version, 9 digits>`, unique and ordered within a task. */
export const changeIdFor = (time: string, taskVersion: number) =>
  `${time}#${String(taskVersion).padStart(9, "0")}`;

/** An event's id: its change's id and its place in the change. */
export const eventId = (changeId: string, index: number) => `${changeId}#${index}`;

/** The change an event id belongs to. */
export const changeIdOf = (id: string) => id.slice(0, id.lastIndexOf("#"));
