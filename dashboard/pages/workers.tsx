import type { SwitchyardClient } from "../../sdk/client.ts";
import { usePoll } from "../api.ts";
import { Problem, Table } from "../parts.tsx";

const REFRESH_MS = 5000;

/** Workers (admin): pool, state, slots and running jobs, last seen. */
export function Workers({ client }: { client: SwitchyardClient }) {
  const workers = usePoll(() => client.call("workers.list", {}), REFRESH_MS, [client]);
  return (
    <section aria-labelledby="workers-title">
      <h1 id="workers-title">Workers</h1>
      <Problem error={workers.error} />
      <Table columns={["Worker", "Pool", "State", "Slots", "Jobs", "Last seen"]} numbers={["Slots"]}>
        {(workers.data ?? []).map((worker) => (
          <tr key={worker.worker_id}>
            <th scope="row">
              {worker.worker_id}
              {worker.self_hosted ? " (self-hosted)" : ""}
            </th>
            <td>{worker.pool}</td>
            <td>{worker.state}</td>
            <td class="number">
              {worker.running} / {worker.slots}
            </td>
            <td>{worker.jobs.join(", ")}</td>
            <td>{worker.last_seen ?? ""}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
