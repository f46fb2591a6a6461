import { useState } from "preact/hooks";
import type { SwitchyardClient } from "../../sdk/client.ts";
import { describe, usePoll } from "../api.ts";
import { Problem, Table } from "../parts.tsx";

/** Tenants and their API keys (admin): create a tenant, add a key (shown once), revoke one. */
export function Tenants({ client }: { client: SwitchyardClient }) {
  const tenants = usePoll(() => client.call("tenants.list", {}), 0, [client]);
  const [open, setOpen] = useState<string>();
  const [name, setName] = useState("");
  const [told, setTold] = useState<string>();
  const create = async (event: Event) => {
    event.preventDefault();
    try {
      const created = await client.call("tenants.create", { body: { name } });
      setTold(`Tenant ${created.tenant.name}: its key (shown this once) is ${created.api_key}`);
      setName("");
      tenants.again();
    } catch (err) {
      setTold(describe(err));
    }
  };
  return (
    <section aria-labelledby="tenants-title">
      <h1 id="tenants-title">Tenants and keys</h1>
      <Problem error={tenants.error} />
      <form class="filters" onSubmit={create}>
        <label for="tenant-name">New tenant</label>
        <input
          id="tenant-name"
          value={name}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
          required
        />
        <button type="submit">Create</button>
      </form>
      {told && <p role="status">{told}</p>}
      <Table columns={["Tenant", "Id", "Queued tasks at most", "Requests a minute", ""]}>
        {(tenants.data ?? []).map((tenant) => (
          <>
            <tr key={tenant.id}>
              <th scope="row">{tenant.name}</th>
              <td>{tenant.id}</td>
              <td>{tenant.max_queued_tasks ?? "—"}</td>
              <td>{tenant.rate_limit_per_minute ?? "—"}</td>
              <td>
                <button
                  type="button"
                  aria-expanded={open === tenant.id}
                  onClick={() => setOpen(open === tenant.id ? undefined : tenant.id)}
                >
                  Keys
                </button>
              </td>
            </tr>
            {open === tenant.id && (
              <tr>
                <td colSpan={5}>
                  <Keys client={client} tenantId={tenant.id} onKey={setTold} />
                </td>
              </tr>
            )}
          </>
        ))}
      </Table>
    </section>
  );
}

function Keys(props: { client: SwitchyardClient; tenantId: string; onKey: (told: string) => void }) {
  const { client, tenantId, onKey } = props;
  const keys = usePoll(() => client.call("tenants.listKeys", { id: tenantId }), 0, [client, tenantId]);
  const act = (action: () => Promise<string>) => async () => {
    try {
      onKey(await action());
      keys.again();
    } catch (err) {
      onKey(describe(err));
    }
  };
  return (
    <div>
      <Problem error={keys.error} />
      <Table columns={["Key", "Scopes", "Created", "Revoked", ""]}>
        {(keys.data ?? []).map((key) => (
          <tr key={key.key_id}>
            <td>{key.key_id}</td>
            <td>{(key.scopes ?? []).join(", ")}</td>
            <td>{key.create_time}</td>
            <td>{key.revoked_time ?? ""}</td>
            <td>
              {!key.revoked_time && (
                <button
                  type="button"
                  onClick={act(async () => {
                    await client.call("tenants.revokeKey", { id: tenantId, key_id: key.key_id });
                    return `Key ${key.key_id} revoked`;
                  })}
                >
                  Revoke
                </button>
              )}
            </td>
          </tr>
        ))}
      </Table>
      <button
        type="button"
        onClick={act(async () => {
          const added = await client.call("tenants.addKey", { id: tenantId, body: {} });
          return `New key (shown this once): ${added.api_key}`;
        })}
      >
        Add a key
      </button>
    </div>
  );
}
