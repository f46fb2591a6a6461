import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { clientFor, forgetKey, keyFromFragment, storedKey } from "./api.ts";
import "./app.css";
import { Login } from "./pages/login.tsx";
import { Pools } from "./pages/pools.tsx";
import { Schedules } from "./pages/schedules.tsx";
import { Task } from "./pages/task.tsx";
import { Tasks } from "./pages/tasks.tsx";
import { Tenants } from "./pages/tenants.tsx";
import { Workers } from "./pages/workers.tsx";
import { WorkflowRun, WorkflowRuns, Workflows } from "./pages/workflows.tsx";

const SECTIONS = [
  ["tasks", "Tasks"],
  ["schedules", "Schedules"],
  ["workflows", "Workflows"],
  ["pools", "Pools and queues"],
  ["workers", "Workers"],
  ["tenants", "Tenants"],
] as const;

/** The page the hash names: `#/tasks`, `#/tasks/<uuid>`, `#/workflows/<id>/runs/<run_id>`, `#/pools`, … */
function useRoute(): string[] {
  const parts = () => location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const [route, setRoute] = useState(parts());
  useEffect(() => {
    const changed = () => setRoute(parts());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function App() {
  const [key, setKey] = useState(storedKey());
  const [section = "tasks", id, , runId] = useRoute();
  const client = useMemo(() => (key ? clientFor(key) : undefined), [key]);
  if (!client) return <Login onKey={setKey} />;
  const signOut = () => {
    forgetKey();
    setKey(undefined);
  };
  return (
    <div class="layout">
      <header>
        <span class="brand">Switchyard</span>
        <nav aria-label="Sections">
          {SECTIONS.map(([name, title]) => (
            <a href={`#/${name}`} aria-current={section === name ? "page" : undefined}>
              {title}
            </a>
          ))}
        </nav>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        {section === "tasks" && id && <Task client={client} uuid={id} />}
        {section === "tasks" && !id && <Tasks client={client} />}
        {section === "workflows" && !id && <Workflows client={client} />}
        {section === "workflows" && id && !runId && <WorkflowRuns client={client} id={id} />}
        {section === "workflows" && id && runId && <WorkflowRun client={client} id={id} runId={runId} />}
        {section === "schedules" && <Schedules client={client} />}
        {section === "pools" && <Pools client={client} />}
        {section === "workers" && <Workers client={client} />}
        {section === "tenants" && <Tenants client={client} />}
      </main>
    </div>
  );
}

keyFromFragment();
render(<App />, document.getElementById("app") as HTMLElement);
