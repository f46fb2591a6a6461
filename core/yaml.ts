/** YAML, as js-yaml reads it (scheduler.config.yaml, rendered templates). */

/** A YAML parser's error in one line: what, and where (js-yaml's message adds a snippet of the text). */
export function yamlProblem(err: unknown): string {
  const { reason, mark } = err as { reason?: string; mark?: { line: number; column: number } };
  return reason && mark ? `${reason} (line ${mark.line + 1}, column ${mark.column + 1})` : String(err);
}
