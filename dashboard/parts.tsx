import type { ComponentChildren } from "preact";

/** A status as a badge: its word always shown, its colour only a help. */
export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

/** A link to a task's page, by its name or the start of its uuid. */
export function TaskLink({ uuid, name }: { uuid: string; name?: string }) {
  return <a href={`#/tasks/${uuid}`}>{name ?? uuid.slice(0, 8)}</a>;
}

/** What went wrong, announced to assistive technologies. */
export function Problem({ error }: { error?: string }) {
  return error ? (
    <p role="alert" class="error">
      {error}
    </p>
  ) : null;
}

/** A table with its column headers; the `numbers` columns are aligned right. */
export function Table(props: { columns: string[]; numbers?: string[]; children: ComponentChildren }) {
  return (
    <table>
      <thead>
        <tr>
          {props.columns.map((name) => (
            <th scope="col" class={props.numbers?.includes(name) ? "number" : undefined}>
              {name}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}
