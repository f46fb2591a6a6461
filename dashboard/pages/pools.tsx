import type { SwitchyardClient } from "../../sdk/client.ts";
import { duration, usePoll } from "../api.ts";
import { Problem, Table } from "../parts.tsx";

const REFRESH_MS = 5000;

/**
 * Pools and their queues: usage, backlog, the expected wait with its error band, paused or not; and the
 * CLI accounts behind them: available, limited until a reset, or disabled, with their last usage.
 */
export function Pools({ client }: { client: SwitchyardClient }) {
  const pools = usePoll(() => client.call("pools.list", {}), REFRESH_MS, [client]);
  const queues = usePoll(() => client.call("pools.queues", { query: {} }), REFRESH_MS, [client]);
  const slas = usePoll(() => client.call("pools.slas", {}), REFRESH_MS, [client]);
  const accounts = usePoll(() => client.call("pools.toolAccounts", {}), REFRESH_MS, [client]);
  const queueOf = (name: string) => (queues.data ?? []).find((q) => q.name === name);
  const slaOf = (name: string) => {
    const sla = (slas.data ?? []).find((s) => s.pool === name);
    if (!sla?.sla) return "none";
    const target = `wait ≤ ${duration(sla.sla.max_wait_seconds)}`;
    return sla.met === null ? `${target}: no samples` : `${target}: ${sla.met ? "met" : "missed"}`;
  };
  return (
    <section aria-labelledby="pools-title">
      <h1 id="pools-title">Pools and queues</h1>
      <Problem error={pools.error ?? queues.error ?? slas.error ?? accounts.error} />
      <Table
        columns={["Pool", "Tool", "Account", "Running", "Usage", "Waiting", "Expected wait", "SLA", "State"]}
        numbers={["Running", "Usage", "Waiting", "Expected wait"]}
      >
        {(pools.data ?? []).map((pool) => {
          const queue = queueOf(pool.name);
          const expect = queue?.waiting_time_expect;
          return (
            <tr key={pool.name}>
              <th scope="row">{pool.name}</th>
              <td>{pool.tool}</td>
              <td>{pool.account ?? ""}</td>
              <td class="number">
                {pool.tasks} / {pool.max_concurrency}
              </td>
              <td class="number">{Math.round(pool.usage * 100)} %</td>
              <td class="number">{queue?.waiting ?? ""}</td>
              <td class="number">
                {expect === null || expect === undefined
                  ? "—"
                  : `${duration(expect)} ± ${duration(queue?.waiting_time_error ?? 0)}`}
              </td>
              <td>{slaOf(pool.name)}</td>
              <td>
                {pool.paused ? `paused${pool.paused_until ? ` until ${pool.paused_until}` : ""}` : "open"}
              </td>
            </tr>
          );
        })}
      </Table>
      <h2 id="accounts-title">CLI accounts</h2>
      <Table columns={["Tool", "Account", "State", "Last usage", "Pools"]}>
        {(accounts.data ?? []).map((account) => (
          <tr key={`${account.tool}/${account.account}`}>
            <th scope="row">{account.tool}</th>
            <td>{account.account}</td>
            <td>
              {account.state === "limited"
                ? `limited until ${account.reset_at} (${[account.window, account.limit_source].filter(Boolean).join(", ")})`
                : account.state}
            </td>
            <td>
              {account.last_usage
                ? `${account.last_usage.status}${
                    account.last_usage.utilization === undefined
                      ? ""
                      : `, ${Math.round(account.last_usage.utilization * 100)} % of ${account.last_usage.window ?? "its window"}`
                  }`
                : "—"}
            </td>
            <td>{account.pools.join(", ")}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
