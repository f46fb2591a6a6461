import { useState } from "preact/hooks";
import { TASK_STATUSES } from "../../core/status.ts";
import type { SwitchyardClient } from "../../sdk/client.ts";
import { between, duration, usd, usePoll } from "../api.ts";
import { Problem, Status, Table, TaskLink } from "../parts.tsx";
import { LastHour } from "./last-hour.tsx";

/** The list is read again this often: it stays live as tasks move. */
const REFRESH_MS = 2000;

type Filters = { status: string; pool: string; tag: string; namespace: string };

/** Tasks, newest first, filtered by status, pool, tag (`k=v`) and namespace; refreshed live. */
export function Tasks({ client }: { client: SwitchyardClient }) {
  const [filters, setFilters] = useState<Filters>({ status: "", pool: "", tag: "", namespace: "" });
  const pools = usePoll(() => client.call("pools.list", {}), 0, [client]);
  const query = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== ""));
  const listed = usePoll(() => client.call("tasks.list", { query: { size: 100, ...query } }), REFRESH_MS, [
    client,
    JSON.stringify(query),
  ]);
  const field = (name: keyof Filters) => ({
    id: `filter-${name}`,
    value: filters[name],
    onChange: (e: Event) => setFilters({ ...filters, [name]: (e.target as HTMLInputElement).value }),
  });
  return (
    <section aria-labelledby="tasks-title">
      <h1 id="tasks-title">Tasks</h1>
      <LastHour client={client} />
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label for="filter-status">Status</label>
        <select {...field("status")}>
          <option value="">any</option>
          {TASK_STATUSES.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
        <label for="filter-pool">Pool</label>
        <select {...field("pool")}>
          <option value="">any</option>
          {(pools.data ?? []).map((p) => (
            <option value={p.name}>{p.name}</option>
          ))}
        </select>
        <label for="filter-tag">Tag</label>
        <input {...field("tag")} placeholder="key=value" />
        <label for="filter-namespace">Namespace</label>
        <input {...field("namespace")} />
      </form>
      <Problem error={listed.error} />
      <p class="count" aria-live="polite">
        {listed.data ? `${listed.data.total} ${listed.data.total === 1 ? "task" : "tasks"}` : "…"}
      </p>
      <Table
        columns={["Name", "Status", "Tool", "Model", "Priority", "Wait", "Duration", "Cost"]}
        numbers={["Priority", "Wait", "Duration", "Cost"]}
      >
        {(listed.data?.tasks ?? []).map((task) => (
          <tr key={task.uuid} data-uuid={task.uuid}>
            <td>
              <TaskLink uuid={task.uuid} name={task.name} />
            </td>
            <td>
              <Status status={task.status} />
            </td>
            <td>{task.tool ?? "container"}</td>
            <td>{task.model ?? ""}</td>
            <td class="number">{task.priority}</td>
            <td class="number">{duration(between(task.create_time, task.start_time))}</td>
            <td class="number">{task.start_time ? duration(between(task.start_time, task.end_time)) : ""}</td>
            <td class="number">{usd(task.result?.cost_usd)}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
