/**
 * Templates: a tenant's named, versioned job definitions (the v2 API's task definitions). A revision is
 * immutable. Its `schema` is a Liquid template (liquidjs, sandboxed: no file system, no includes, limits
 * on parse and render time and memory) rendering to YAML or JSON: a CLI job for `prompt` and `agent`, a
 * container job for `pod`.
 */
import type { Liquid } from "liquidjs";
import * as z from "zod";
import { actingTenant, type Principal, requireScope } from "./auth.ts";
import type { Deps } from "./deps.ts";
import { ConflictError, ERROR_CODES, NotFoundError, ValidationError } from "./errors.ts";
import { LIMITS, label } from "./fields.ts";
import { retryOnConflict } from "./optimistic.ts";
import { type PodJob, podJob } from "./pods.ts";
import { CommitConflict } from "./ports.ts";
import { objectOrJson, renderedCliJob, TEMPLATE_REF, templateName } from "./requests.ts";
import { yamlProblem } from "./yaml.ts";

/** The job types Switchyard runs. */
export const TEMPLATE_TYPES = ["prompt", "agent", "pod"] as const;
/** The v2 API's Kubernetes kinds: ECS runs pods, and nothing else of Kubernetes. */
const KUBERNETES_TYPES = ["kfjob", "deployment", "crd"];

const SCHEMA_MAX_BYTES = 64 * 1024;
/** A rendered job is at most this big, and takes at most this long to render. */
export const RENDER_LIMITS = { outputBytes: 256 * 1024, renderMs: 200 } as const;

export const templateBody = z.strictObject({
  name: templateName,
  title: label(LIMITS.nameLength).optional(),
  type: z.string().superRefine((type, ctx) => {
    if (KUBERNETES_TYPES.includes(type)) {
      ctx.addIssue({
        code: "custom",
        message: `${type} is a Kubernetes kind: Switchyard runs prompt, agent or pod jobs (pods on ECS)`,
      });
    } else if (!(TEMPLATE_TYPES as readonly string[]).includes(type)) {
      ctx.addIssue({ code: "custom", message: `must be one of ${TEMPLATE_TYPES.join(", ")}` });
    }
  }),
  schema: z
    .string()
    .min(1)
    .refine((s) => Buffer.byteLength(s) <= SCHEMA_MAX_BYTES, `at most ${SCHEMA_MAX_BYTES} bytes`),
  extra: objectOrJson.default({}),
});
export type TemplateBody = z.output<typeof templateBody>;

export const renderBody = z.strictObject({
  value: objectOrJson.default({}),
  extra: objectOrJson.default({}),
});

export interface TemplateRevision {
  tenant: string;
  name: string;
  revision: number;
  title?: string;
  type: (typeof TEMPLATE_TYPES)[number];
  schema: string;
  extra: Record<string, unknown>;
  create_time: string;
}

let liquidEngine: Promise<Liquid> | undefined;
/**
 * Liquid with nothing to reach: no file system, no partials, bounded in time and memory. Loaded and made on
 * first use, so that a process that renders nothing never evaluates it (a bundle that cannot, such as the
 * tick's, leaves it out).
 */
function engine(): Promise<Liquid> {
  liquidEngine ??= import("liquidjs").then(
    ({ Liquid }) =>
      new Liquid({
        templates: {},
        ownPropertyOnly: true,
        strictFilters: true,
        parseLimit: SCHEMA_MAX_BYTES,
        renderLimit: RENDER_LIMITS.renderMs,
        memoryLimit: RENDER_LIMITS.outputBytes * 4,
      }),
  );
  return liquidEngine;
}

/** A workflow node's inline prompt with its `{{ inputs.key }}` filled in (the same sandboxed Liquid). */
export async function renderPrompt(prompt: string, inputs: Record<string, unknown>): Promise<string> {
  try {
    return await (await engine()).parseAndRender(prompt, { inputs });
  } catch (err) {
    throw new ValidationError("prompt", `does not render: ${String((err as Error).message)}`);
  }
}

/** The job a revision renders to for `value` and `extra` (merged over the template's), validated. */
export async function renderRevision(
  revision: Pick<TemplateRevision, "type" | "schema" | "extra">,
  input: {
    value: Record<string, unknown>;
    extra: Record<string, unknown>;
    task?: Record<string, unknown>;
    /** A workflow node's inputs (core/workflow-runs.ts). */
    inputs?: Record<string, unknown>;
  },
): Promise<{ spec: Record<string, unknown>; bytes: number }> {
  let text: string;
  try {
    text = await (await engine()).parseAndRender(revision.schema, {
      value: input.value,
      extra: { ...revision.extra, ...input.extra },
      task: input.task ?? {},
      inputs: input.inputs ?? {},
    });
  } catch (err) {
    throw new ValidationError("template", `does not render: ${String((err as Error).message)}`);
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > RENDER_LIMITS.outputBytes) {
    throw new ValidationError("template", `renders to ${bytes} bytes, past ${RENDER_LIMITS.outputBytes}`);
  }
  // Loaded here, so that a bundle that renders nothing (the tick) leaves the parser out.
  const { load } = await import("js-yaml");
  let parsed: unknown;
  try {
    parsed = load(text);
  } catch (err) {
    throw new ValidationError("template", `renders to text that is not YAML or JSON: ${yamlProblem(err)}`);
  }
  const schema = revision.type === "pod" ? podJob : renderedCliJob;
  const checked = schema.safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const field = ["value", ...(issue?.path ?? []).map(String)].join(".");
    throw new ValidationError(
      field,
      `the rendered ${revision.type} job is not valid: ${issue?.message ?? "invalid"}`,
    );
  }
  return { spec: checked.data as Record<string, unknown>, bytes };
}

export const templateNotFound = (name: string, revision?: number) =>
  new NotFoundError(
    ERROR_CODES.templateNotFound,
    `template ${name}${revision === undefined ? "" : ` revision ${revision}`} not found`,
  );

/** Stores revision 1 of a new template (a 409 if the name is taken). */
export async function createTemplate(
  deps: Pick<Deps, "templates" | "clock">,
  principal: Principal,
  body: TemplateBody,
) {
  requireScope(principal, "tasks:write");
  await assertParses(body.schema);
  const revision = revisionOf(actingTenant(principal), body, 1, deps.clock.now());
  try {
    await deps.templates.putRevision(revision);
  } catch (err) {
    if (err instanceof CommitConflict)
      throw new ConflictError(`template ${body.name} already exists: PUT a new revision`);
    throw err;
  }
  return { id: body.name, name: body.name, revision: 1 };
}

/** Adds the next revision of a template; the earlier ones stay as they were. */
export async function updateTemplate(
  deps: Pick<Deps, "templates" | "clock">,
  principal: Principal,
  name: string,
  body: TemplateBody,
) {
  requireScope(principal, "tasks:write");
  if (body.name !== name) throw new ValidationError("name", `must be ${name}, the template's name`);
  const tenant = actingTenant(principal);
  await assertParses(body.schema);
  // Racing updates each take the next number: a lost race reads the latest again.
  return retryOnConflict(async () => {
    const latest = await deps.templates.getTemplate(tenant, name);
    if (!latest) throw templateNotFound(name);
    await deps.templates.putRevision(revisionOf(tenant, body, latest.revision + 1, deps.clock.now()));
    return { id: name, name, revision: latest.revision + 1 };
  });
}

/** A template's Liquid must parse before it is stored (a 400 naming `schema`, with the engine's message). */
async function assertParses(schema: string): Promise<void> {
  try {
    (await engine()).parse(schema);
  } catch (err) {
    throw new ValidationError("schema", `does not parse: ${String((err as Error).message)}`);
  }
}

function revisionOf(tenant: string, body: TemplateBody, revision: number, now: Date): TemplateRevision {
  return {
    tenant,
    name: body.name,
    revision,
    title: body.title,
    type: body.type as TemplateRevision["type"],
    schema: body.schema,
    extra: body.extra,
    create_time: now.toISOString(),
  };
}

/** One revision of a template (the latest without `revision`), with how many it has. */
export async function getTemplate(
  deps: Pick<Deps, "templates">,
  principal: Principal,
  name: string,
  revision?: number,
) {
  requireScope(principal, "tasks:read");
  const tenant = actingTenant(principal);
  const latest = await deps.templates.getTemplate(tenant, name);
  if (!latest) throw templateNotFound(name);
  const found = revision === undefined ? latest : await deps.templates.getTemplate(tenant, name, revision);
  if (!found) throw templateNotFound(name, revision);
  const { tenant: _, ...view } = found;
  return { ...view, revisions: latest.revision };
}

/** The tenant's template names, or (verbose) their latest revisions. */
export async function listTemplates(deps: Pick<Deps, "templates">, principal: Principal, verbose: boolean) {
  requireScope(principal, "tasks:read");
  const latest = await deps.templates.listTemplates(actingTenant(principal));
  return verbose
    ? latest.map(({ tenant: _, ...view }) => ({ ...view, revisions: view.revision }))
    : latest.map((t) => t.name);
}

/** A dry run: what a revision renders to for `value` and `extra`; nothing is stored. */
export async function renderTemplate(
  deps: Pick<Deps, "templates">,
  principal: Principal,
  name: string,
  input: z.output<typeof renderBody>,
) {
  const template = await getTemplate(deps, principal, name);
  return renderRevision(template, input);
}

/** A template's job for a submission: a CLI job (`prompt`, `agent`) or a pod job (`pod`). */
export type RenderedJob =
  | { type: "prompt" | "agent"; spec: z.output<typeof renderedCliJob> }
  | { type: "pod"; spec: PodJob };

/**
 * The job a submission's `template` (`name` or `name@revision`) renders to, with the revision used. An
 * unknown template is a 404 (1006).
 */
export async function renderForTask(
  deps: Pick<Deps, "templates">,
  tenant: string,
  ref: string,
  input: Parameters<typeof renderRevision>[1],
): Promise<RenderedJob & { name: string; revision: number }> {
  const [, name = ref, revisionText] = TEMPLATE_REF.exec(ref) ?? [];
  const asked = revisionText === undefined ? undefined : Number(revisionText);
  const revision = await deps.templates.getTemplate(tenant, name, asked);
  if (!revision) throw templateNotFound(name, asked);
  const { spec } = await renderRevision(revision, input);
  return { name, revision: revision.revision, type: revision.type, spec } as RenderedJob & {
    name: string;
    revision: number;
  };
}
