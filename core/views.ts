import type * as z from "zod";
import { type Run, runViewSchema, type Task, taskViewSchema } from "./records.ts";

/** The fields of `record` that `shape` names: a view keeps what its schema shows, nothing else. */
const pick = <T extends object>(record: object, shape: Record<keyof T, unknown>): T =>
  Object.fromEntries(Object.entries(record).filter(([name]) => Object.hasOwn(shape, name))) as T;

export type TaskView = z.infer<typeof taskViewSchema>;
export type RunView = z.infer<typeof runViewSchema>;

/** What a client sees of a task: bookkeeping fields stay inside. */
export const taskView = (task: Task): TaskView => pick<TaskView>(task, taskViewSchema.shape);

export const runView = (run: Run): RunView => pick<RunView>(run, runViewSchema.shape);
