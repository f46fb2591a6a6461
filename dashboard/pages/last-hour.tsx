import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { type TaskStatus, TERMINAL_STATUSES } from "../../core/status.ts";
import type { TaskView } from "../../core/views.ts";
import type { SwitchyardClient } from "../../sdk/client.ts";
import { usd, usePoll } from "../api.ts";
import { Problem } from "../parts.tsx";
import "uplot/dist/uPlot.min.css";

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const REFRESH_MS = 30_000;

/** Per minute of the last hour: tasks ended, their median wait (s) and their cost ($). */
function lastHour(tasks: TaskView[], now: number) {
  const minutes = Array.from(
    { length: 60 },
    (_, i) => Math.floor((now - HOUR_MS) / MINUTE_MS) * 60 + (i + 1) * 60,
  );
  const ended = minutes.map(() => 0);
  const cost = minutes.map(() => 0);
  const waits: number[][] = minutes.map(() => []);
  for (const task of tasks) {
    if (!task.end_time || !TERMINAL_STATUSES.includes(task.status as TaskStatus)) continue;
    const at = Math.floor((Date.parse(task.end_time) - (now - HOUR_MS)) / MINUTE_MS);
    if (at < 0 || at >= 60) continue;
    ended[at] = (ended[at] ?? 0) + 1;
    cost[at] = (cost[at] ?? 0) + (task.result?.cost_usd ?? 0);
    if (task.start_time) waits[at]?.push((Date.parse(task.start_time) - Date.parse(task.create_time)) / 1000);
  }
  const median = (values: number[]) =>
    values.length === 0 ? null : ([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? null);
  return { minutes, ended, wait: waits.map(median), cost };
}

/** One small chart of a series over the last hour. */
function Chart(props: { title: string; x: number[]; y: (number | null)[]; unit: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const chart = new uPlot(
      {
        width: 360,
        height: 140,
        legend: { show: false },
        series: [{}, { label: props.title, stroke: "#0b57d0", width: 2, points: { show: true, size: 4 } }],
        axes: [{}, { label: props.unit, size: 56 }],
      },
      [props.x, props.y],
      box.current,
    );
    return () => chart.destroy();
  }, [props.x, props.y]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={`${props.title} over the last hour`} />
    </figure>
  );
}

/** Throughput, wait and cost over the last hour, from the tasks created in it. */
export function LastHour({ client }: { client: SwitchyardClient }) {
  const tasks = usePoll(
    async () => {
      const recent: TaskView[] = [];
      const since = Date.now() - HOUR_MS;
      for await (const task of client.pages("tasks.list", "tasks", { query: { size: 100 } })) {
        if (Date.parse(task.create_time) < since) break;
        recent.push(task);
      }
      return recent;
    },
    REFRESH_MS,
    [client],
  );
  if (!tasks.data) return <Problem error={tasks.error} />;
  const hour = lastHour(tasks.data, Date.now());
  const total = hour.ended.reduce((a, b) => a + b, 0);
  const spent = hour.cost.reduce((a, b) => a + b, 0);
  return (
    <section aria-labelledby="hour-title" class="last-hour">
      <h2 id="hour-title">The last hour</h2>
      <p class="count">
        {total} {total === 1 ? "task" : "tasks"} ended, {usd(spent)} spent
      </p>
      <div class="charts">
        <Chart title="Tasks ended a minute" x={hour.minutes} y={hour.ended} unit="tasks" />
        <Chart title="Median wait" x={hour.minutes} y={hour.wait} unit="s" />
        <Chart title="Cost a minute" x={hour.minutes} y={hour.cost} unit="$" />
      </div>
    </section>
  );
}
