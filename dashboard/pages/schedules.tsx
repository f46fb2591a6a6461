import { type TaskStatus, TERMINAL_STATUSES } from "../../core/status.ts";
import type { TaskView } from "../../core/views.ts";
import type { SwitchyardClient } from "../../sdk/client.ts";
import { describe, usePoll } from "../api.ts";
import { Problem, Status, Table, TaskLink } from "../parts.tsx";

/** The newest tasks looked through for recurring ones (the API lists tasks newest first). */
const LOOKED_THROUGH = 1000;
const REFRESH_MS = 10_000;

/** The open recurring tasks among the newest ones, with their next run and window; paused and resumed here. */
export function Schedules({ client }: { client: SwitchyardClient }) {
  const schedules = usePoll(
    async () => {
      const found: TaskView[] = [];
      let seen = 0;
      for await (const task of client.pages("tasks.list", "tasks", { query: { size: 100 } })) {
        const open = !TERMINAL_STATUSES.includes(task.status as TaskStatus);
        if (open && (task.interval !== undefined || task.schedule !== undefined)) found.push(task);
        if (++seen >= LOOKED_THROUGH) break;
      }
      return found;
    },
    REFRESH_MS,
    [client],
  );
  const toggle = (task: TaskView) => async () => {
    try {
      await client.call(task.status === "paused" ? "tasks.resume" : "tasks.pause", { uuid: task.uuid });
      schedules.again();
    } catch (err) {
      alert(describe(err));
    }
  };
  return (
    <section aria-labelledby="schedules-title">
      <h1 id="schedules-title">Schedules</h1>
      <p class="hint">Open recurring tasks among the newest {LOOKED_THROUGH}.</p>
      <Problem error={schedules.error} />
      <Table columns={["Task", "Status", "Every", "Window", "Next run", "Runs", ""]} numbers={["Runs"]}>
        {(schedules.data ?? []).map((task) => (
          <tr key={task.uuid}>
            <td>
              <TaskLink uuid={task.uuid} name={task.name} />
            </td>
            <td>
              <Status status={task.status} />
            </td>
            <td>{task.schedule ?? `${task.interval} s`}</td>
            <td>
              {task.valid_time_range
                ? `${task.valid_time_range[0]}:00–${task.valid_time_range[1]}:00 ${task.timezone ?? "UTC"}`
                : "always"}
            </td>
            <td>{task.status === "paused" ? "paused" : (task.next_run_time ?? "")}</td>
            <td class="number">
              {task.fired_count ?? 0}
              {task.times ? ` / ${task.times}` : ""}
            </td>
            <td>
              <button type="button" onClick={toggle(task)}>
                {task.status === "paused" ? "Resume" : "Pause"}
              </button>
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
