import { useEffect, useMemo, useState } from "preact/hooks";
import type { SwitchyardClient } from "../../sdk/client.ts";
import { storedKey, usePoll } from "../api.ts";
import { draw } from "../graph.ts";
import { Problem, Status, Table, TaskLink } from "../parts.tsx";

/** The tenant's workflows, each with a link to its runs. */
export function Workflows({ client }: { client: SwitchyardClient }) {
  const listed = usePoll(() => client.call("workflows.list", {}), 10_000, [client]);
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      <Problem error={listed.error} />
      <Table columns={["Workflow", "Id", "Version", "Updated"]} numbers={["Version"]}>
        {(listed.data ?? []).map((w) => (
          <tr key={w.workflow_id}>
            <td>
              <a href={`#/workflows/${w.workflow_id}`}>{w.name ?? w.workflow_id}</a>
            </td>
            <td>{w.workflow_id}</td>
            <td class="number">{w.version}</td>
            <td>{w.update_time}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

/** A workflow's runs, newest first. */
export function WorkflowRuns({ client, id }: { client: SwitchyardClient; id: string }) {
  const runs = usePoll(() => client.call("workflows.runs", { id }), 5000, [client, id]);
  return (
    <section aria-labelledby="runs-title">
      <p>
        <a href="#/workflows">← Workflows</a>
      </p>
      <h1 id="runs-title">Runs of {id}</h1>
      <Problem error={runs.error} />
      <Table columns={["Run", "Status", "Nodes done", "Started"]} numbers={["Nodes done"]}>
        {(runs.data ?? []).map((run) => (
          <tr key={run.run_id}>
            <td>
              <a href={`#/workflows/${id}/runs/${run.run_id}`}>{run.run_id}</a>
            </td>
            <td>
              <Status status={run.status} />
            </td>
            <td class="number">
              {run.nodes_done} / {run.nodes_total}
            </td>
            <td>{run.create_time}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

interface StreamMessage {
  type: "start_task" | "finish_task" | "finish_workflow";
  seq: number;
  data: { name?: string; status?: string };
}

/**
 * Follows a run's live results stream (its `stream_url`, the key as a subprotocol: a browser sets no
 * headers), connecting again after `?after=` when it drops; calls `onMessage` with each message once.
 */
function useRunStream(streamUrl: string | undefined, onMessage: (message: StreamMessage) => void) {
  useEffect(() => {
    if (!streamUrl) return;
    const url = new URL(streamUrl, location.href);
    url.protocol = url.protocol.replace(/^http/, "ws");
    let last = 0;
    let ended = false;
    let socket: WebSocket | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const connect = () => {
      url.searchParams.set("after", String(last));
      socket = new WebSocket(url, ["key", storedKey() ?? ""]);
      socket.onmessage = (event) => {
        const message = JSON.parse(String(event.data)) as StreamMessage;
        if (message.seq <= last) return;
        last = message.seq;
        if (message.type === "finish_workflow") ended = true;
        onMessage(message);
      };
      socket.onclose = () => {
        if (!ended) retry = setTimeout(connect, 2000);
      };
    };
    connect();
    return () => {
      ended = true;
      clearTimeout(retry);
      socket?.close();
    };
  }, [streamUrl]);
}

/** A run: its graph (wide levels grouped), its nodes' states changing live from its stream. */
export function WorkflowRun({ client, id, runId }: { client: SwitchyardClient; id: string; runId: string }) {
  const [run, setRun] = useState<Awaited<ReturnType<typeof loadRun>>>();
  const [statuses, setStatuses] = useState<Record<string, string>>({});
  const [error, setError] = useState<string>();
  const loadRun = () => client.call("workflows.getRun", { id, run_id: runId });
  useEffect(() => {
    loadRun().then(
      (loaded) => {
        setRun(loaded);
        setStatuses(Object.fromEntries(loaded.nodes.map((n) => [n.name, n.status])));
      },
      (err: unknown) => setError(String(err)),
    );
  }, [client, id, runId]);
  useRunStream(run?.stream_url, (message) => {
    const { name, status } = message.data;
    if (message.type === "start_task" && name) setStatuses((s) => ({ ...s, [name]: "running" }));
    if (message.type === "finish_task" && name && status) setStatuses((s) => ({ ...s, [name]: status }));
    if (message.type === "finish_workflow") void loadRun().then(setRun);
  });
  const drawing = useMemo(
    () =>
      run
        ? draw(
            run.nodes.map((n) => n.name),
            run.edges,
          )
        : undefined,
    [run?.run_id, run?.nodes.length],
  );
  if (!run || !drawing) return <p role={error ? "alert" : undefined}>{error ?? "…"}</p>;
  const countBy = (names: string[]) => {
    const counts: Record<string, number> = {};
    for (const name of names)
      counts[statuses[name] ?? "pending"] = (counts[statuses[name] ?? "pending"] ?? 0) + 1;
    return counts;
  };
  return (
    <section aria-labelledby="run-title">
      <p>
        <a href={`#/workflows/${id}`}>← Runs</a>
      </p>
      <h1 id="run-title">
        Run {runId} <Status status={run.status} />
      </h1>
      <svg
        class="dag"
        role="img"
        aria-label={`The run's graph: ${run.nodes.length} nodes`}
        viewBox={`0 0 ${drawing.width} ${drawing.height}`}
        width={drawing.width}
        height={drawing.height}
      >
        {drawing.edges.map((e) => (
          <polyline
            key={`${e.from}>${e.to}`}
            class="edge"
            points={e.points.map((p) => `${p.x},${p.y}`).join(" ")}
          />
        ))}
        {drawing.nodes.map((n) => {
          const counts = countBy(n.members);
          // A group takes its members' status once they all have the same one.
          const shared = Object.keys(counts);
          const status = shared.length === 1 ? shared[0] : "group";
          const summary = Object.entries(counts)
            .map(([s, count]) => `${count} ${s}`)
            .join(", ");
          return (
            <g key={n.id} class={`node status-${status}`} data-node={n.id}>
              <title>{`${n.label}: ${n.members.length === 1 ? status : summary}`}</title>
              <rect x={n.x - n.width / 2} y={n.y - n.height / 2} width={n.width} height={n.height} rx={6} />
              <text x={n.x} y={n.y - (n.members.length > 1 ? 4 : -4)} text-anchor="middle">
                {n.label}
              </text>
              {n.members.length > 1 && (
                <text x={n.x} y={n.y + 12} text-anchor="middle" class="summary">
                  {summary}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <h2>Nodes</h2>
      <Table columns={["Node", "Status", "Task"]}>
        {run.nodes.slice(0, 200).map((n) => (
          <tr key={n.name}>
            <td>{n.name}</td>
            <td>
              <Status status={statuses[n.name] ?? n.status} />
            </td>
            <td>{n.task_uuid ? <TaskLink uuid={n.task_uuid} /> : ""}</td>
          </tr>
        ))}
      </Table>
      {run.nodes.length > 200 && <p class="hint">The first 200 nodes of {run.nodes.length}.</p>}
    </section>
  );
}
