import { useState } from "preact/hooks";
import { clientFor, describe, keepKey } from "../api.ts";
import { Problem } from "../parts.tsx";

/** Asks for the API key once; it is checked against the API before it is kept. */
export function Login({ onKey }: { onKey: (key: string) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string>();
  const submit = async (event: Event) => {
    event.preventDefault();
    try {
      await clientFor(key.trim()).call("tasks.list", { query: { size: 1 } });
      keepKey(key.trim());
      onKey(key.trim());
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <main class="login">
      <h1>Switchyard</h1>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          required
        />
        <button type="submit">Sign in</button>
        <Problem error={error} />
      </form>
      <p class="hint">The key stays in this tab only (sessionStorage).</p>
    </main>
  );
}
