import { useState } from "preact/hooks";
import { type TaskStatus, TERMINAL_STATUSES } from "../../core/status.ts";
import type { SwitchyardClient } from "../../sdk/client.ts";
import { between, describe, duration, usd, usePoll } from "../api.ts";
import { Status, Table } from "../parts.tsx";

const REFRESH_MS = 2000;

/** One task: its fields, runs, logs (followed while it runs), events and files, and what can be done to it. */
export function Task({ client, uuid }: { client: SwitchyardClient; uuid: string }) {
  const [follow, setFollow] = useState(true);
  const [acted, setActed] = useState<string>();
  const task = usePoll(() => client.call("tasks.get", { uuid }), REFRESH_MS, [client, uuid]);
  const open = task.data ? !TERMINAL_STATUSES.includes(task.data.status as TaskStatus) : true;
  const live = open && follow ? REFRESH_MS : 0;
  const runs = usePoll(() => client.call("instances.list", { query: { task_id: uuid, size: 50 } }), live, [
    client,
    uuid,
    live,
  ]);
  const logs = usePoll(() => client.call("tasks.log", { uuid, query: {} }), live, [client, uuid, live]);
  const events = usePoll(() => client.call("tasks.events", { uuid, query: { size: 100 } }), live, [
    client,
    uuid,
    live,
  ]);
  const files = usePoll(() => client.call("tasks.files", { uuid }), open ? REFRESH_MS : 0, [
    client,
    uuid,
    open,
  ]);

  const act = (label: string, action: () => Promise<unknown>) => async () => {
    try {
      await action();
      setActed(`${label}: done`);
      task.again();
    } catch (err) {
      setActed(`${label}: ${describe(err)}`);
    }
  };
  const download = async (path: string) => {
    const bytes = await client.call("tasks.file", { uuid, path });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([bytes as BlobPart]));
    link.download = path.split("/").at(-1) ?? "file";
    link.click();
    URL.revokeObjectURL(link.href);
  };

  const t = task.data;
  if (!t) return <p role={task.error ? "alert" : undefined}>{task.error ?? "…"}</p>;
  const recurring = t.interval !== undefined || t.schedule !== undefined;
  return (
    <section aria-labelledby="task-title">
      <p>
        <a href="#/tasks">← Tasks</a>
      </p>
      <h1 id="task-title">
        {t.name ?? t.uuid} <Status status={t.status} />
      </h1>
      <div class="actions">
        {open && (
          <button type="button" onClick={act("Cancel", () => client.call("tasks.cancel", { uuid }))}>
            Cancel
          </button>
        )}
        {recurring && t.status !== "paused" && open && (
          <button type="button" onClick={act("Pause", () => client.call("tasks.pause", { uuid }))}>
            Pause
          </button>
        )}
        {t.status === "paused" && (
          <button type="button" onClick={act("Resume", () => client.call("tasks.resume", { uuid }))}>
            Resume
          </button>
        )}
        {t.status === "queued" && (
          <button
            type="button"
            onClick={act("Move up", () =>
              client.call("tasks.reorder", { uuid, body: { priority_offset: -3600 } }),
            )}
          >
            Move up an hour
          </button>
        )}
        {acted && <span role="status">{acted}</span>}
      </div>

      <h2>Fields</h2>
      <dl class="fields">
        {Object.entries(t)
          .filter(([, value]) => value !== undefined && value !== null)
          .map(([name, value]) => (
            <>
              <dt>{name}</dt>
              <dd>{typeof value === "object" ? <code>{JSON.stringify(value)}</code> : String(value)}</dd>
            </>
          ))}
      </dl>

      <h2>Runs</h2>
      <Table
        columns={[
          "Attempt",
          "Status",
          "Exit code",
          "Duration",
          "Tokens (in / out)",
          "Cost",
          "Worker",
          "Resumed",
        ]}
        numbers={["Attempt", "Exit code", "Duration", "Tokens (in / out)", "Cost"]}
      >
        {(runs.data?.instances ?? []).map((run, _, all) => (
          <tr key={run.run_id}>
            <td class="number">{run.attempt}</td>
            <td>
              <Status status={run.status} />
            </td>
            <td class="number">{run.exit_code ?? ""}</td>
            <td class="number">{run.start_time ? duration(between(run.start_time, run.end_time)) : ""}</td>
            <td class="number">{run.tokens ? `${run.tokens.input ?? 0} / ${run.tokens.output ?? 0}` : ""}</td>
            <td class="number">{usd(run.cost_usd)}</td>
            <td>{run.worker ?? ""}</td>
            <td>{resumedFrom(run, all)}</td>
          </tr>
        ))}
      </Table>

      <h2>
        Logs{" "}
        <label class="inline">
          <input type="checkbox" checked={follow} onChange={() => setFollow(!follow)} /> follow
        </label>
      </h2>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard (WCAG 2.1.1). */}
      <pre class="logs" role="log" aria-label="Logs" tabIndex={0}>
        {typeof logs.data === "string" ? logs.data : (logs.error ?? "")}
      </pre>

      <h2>Events</h2>
      <ol class="timeline">
        {(events.data?.events ?? []).map((event) => (
          <li key={event.id}>
            <time dateTime={event.time}>{event.time.replace("T", " ").slice(0, 19)}</time> {event.type}
          </li>
        ))}
      </ol>

      <h2>Files</h2>
      <ul>
        {(files.data ?? []).map((file) => (
          <li key={file.path}>
            <button type="button" class="link" onClick={() => download(file.path)}>
              {file.path}
            </button>{" "}
            ({file.size_bytes} bytes, {file.is_input ? "input" : "output"})
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Which attempt's CLI session a run took up instead of starting over. */
function resumedFrom(run: { resumed_from?: string }, runs: { run_id: string; attempt: number }[]): string {
  if (run.resumed_from === undefined) return "";
  const from = runs.find((r) => r.run_id === run.resumed_from);
  return from ? `from attempt ${from.attempt}` : "yes";
}
