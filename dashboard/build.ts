/**
 * The dashboard's files, bundled with esbuild from this folder (Preact, dagre, the SDK): everything from
 * npm, nothing fetched at run time. With the API's docs, they are the files served as they are, at `/`
 * and under `dashboard/`: by the local server, and on AWS from S3 (infra/constructs/static-files.ts).
 */
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildSync } from "esbuild";
import { DOCS_PATH, docsFiles, type StaticFile } from "../functions/_shared/docs.ts";

/**
 * No framing by another site, no referrer. (The page's Content-Security-Policy is in its own `<meta>`, the
 * same wherever it is served.)
 */
const DASHBOARD_HEADERS = { "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer" };

let built: string | undefined;
/** The page, its style and its bundled script, written once per process to a folder of their own. */
function builtDir(): string {
  if (!built) {
    const here = import.meta.dirname;
    built = mkdtempSync(join(tmpdir(), "switchyard-dashboard-"));
    buildSync({
      entryPoints: [resolve(here, "app.tsx")],
      outfile: join(built, "app.js"),
      bundle: true,
      minify: true,
      format: "esm",
      target: "es2022",
      jsx: "automatic",
      jsxImportSource: "preact",
      legalComments: "none",
      logLevel: "silent",
    });
    // The styles it imports (its own, uPlot's) land beside it, as app.css.
    copyFileSync(resolve(here, "index.html"), join(built, "index.html"));
  }
  return built;
}

/** Every file served as it is, by its path: the API's docs under DOCS_PATH, the dashboard at `/`. */
export function staticFiles(): Record<string, StaticFile> {
  const dir = builtDir();
  const docs = Object.entries(docsFiles()).map(([name, file]) => [
    name ? `${DOCS_PATH}/${name}` : DOCS_PATH,
    file,
  ]);
  const own = (name: string, contentType: string): StaticFile => ({
    contentType,
    path: join(dir, name),
    headers: DASHBOARD_HEADERS,
  });
  return {
    ...Object.fromEntries(docs),
    "/": own("index.html", "text/html; charset=utf-8"),
    "/dashboard/app.js": own("app.js", "text/javascript; charset=utf-8"),
    "/dashboard/app.css": own("app.css", "text/css; charset=utf-8"),
  };
}
