import { describe, expect, it } from "vitest";
import {
  createTemplate,
  getTemplate,
  RENDER_LIMITS,
  renderRevision,
  templateBody,
  updateTemplate,
} from "../../core/templates.ts";
import { ADMIN, memoryDeps } from "../support/memory-deps.ts";

const prompt = (schema: string, extra: Record<string, unknown> = {}) => ({
  type: "prompt" as const,
  schema,
  extra,
});

describe("rendering a template", () => {
  it("renders YAML or JSON, with value, extra (the task's over the template's) and task in its context", async () => {
    const yaml = prompt('tool: codex\nprompt: "{{ value.what }} in {{ extra.lang }} for {{ task.name }}"', {
      lang: "go",
    });
    const rendered = await renderRevision(yaml, {
      value: { what: "a parser" },
      extra: { lang: "rust" },
      task: { name: "t1" },
    });
    expect(rendered.spec).toMatchObject({ tool: "codex", prompt: "a parser in rust for t1" });
    const json = await renderRevision(prompt('{"prompt": "{{ value.n | plus: 1 }}"}'), {
      value: { n: 41 },
      extra: {},
    });
    expect(json.spec).toMatchObject({ prompt: "42" });
  });

  it("stops a template that runs too long or writes too much, and reads no inherited property", async () => {
    const endless = prompt('prompt: "{% for i in (1..100000000) %}x{% endfor %}"');
    await expect(renderRevision(endless, { value: {}, extra: {} })).rejects.toThrow(
      /^template: does not render/,
    );
    const big = prompt(`prompt: "{% for i in (1..${RENDER_LIMITS.outputBytes}) %}xy{% endfor %}"`);
    await expect(renderRevision(big, { value: {}, extra: {} })).rejects.toThrow(/^template: /);
    const sneaky = prompt('prompt: "[{{ value.constructor }}][{{ value.__proto__ }}]"');
    expect((await renderRevision(sneaky, { value: {}, extra: {} })).spec).toMatchObject({ prompt: "[][]" });
  });

  it("validates the job it renders to against the inline job's schema, or the pod's", async () => {
    await expect(renderRevision(prompt("tool: claude"), { value: {}, extra: {} })).rejects.toThrow(
      /^value\.prompt: the rendered prompt job is not valid/,
    );
    await expect(
      renderRevision(prompt('prompt: "x"\npriority: 9'), { value: {}, extra: {} }),
    ).rejects.toThrow(/not valid/);
    const pod = { type: "pod" as const, schema: 'image: "busybox"\nenv: { "bad name": "x" }', extra: {} };
    await expect(renderRevision(pod, { value: {}, extra: {} })).rejects.toThrow(/^value\.env/);
  });

  it("says where the text it renders to stops being YAML, in one line", async () => {
    const broken = prompt('prompt: "{{ value.text }}"\noutput_files: [a,');
    await expect(renderRevision(broken, { value: { text: "x" }, extra: {} })).rejects.toThrow(
      /^template: renders to text that is not YAML or JSON: unexpected end of the stream within a flow collection \(line \d, column \d+\)$/,
    );
  });
});

describe("template revisions", () => {
  it("give racing updates each a revision of their own, with no gap", async () => {
    const { deps } = memoryDeps("pools:\n  - { name: p, tool: claude, account: a, max_concurrency: 1 }\n");
    const body = templateBody.parse({ name: "t", type: "prompt", schema: 'prompt: "x"' });
    await createTemplate(deps, ADMIN, body);
    const revisions = await Promise.all(
      Array.from({ length: 4 }, () => updateTemplate(deps, ADMIN, "t", body)),
    );
    expect(revisions.map((r) => r.revision).sort()).toEqual([2, 3, 4, 5]);
    expect((await getTemplate(deps, ADMIN, "t")).revisions).toBe(5);
  });
});
