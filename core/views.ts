import type { Run, Task } from "./schemas.ts";

/** What a client sees of a task: bookkeeping fields stay inside. */
export function taskView(task: Task) {
  const {
    version: _version,
    run_count: _runCount,
    due_time: _due,
    ready_time: _ready,
    rate_limit_retries: _rateLimitRetries,
    occurrence_waiting: _occurrenceWaiting,
    reorder_slot: _reorderSlot,
    paused_from: _pausedFrom,
    ...visible
  } = task;
  return visible;
}

export function runView(run: Run) {
  const { version: _version, log_inline: _logInline, ...visible } = run;
  return visible;
}
