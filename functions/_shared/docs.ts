/**
 * The interactive API docs at GET /v2/docs: Swagger UI (swagger-ui-dist, from npm) on the API's own
 * OpenAPI document, with nothing fetched from elsewhere. Static files, so no Lambda serves them: the local
 * server reads them from here, and on AWS the API serves them from S3 as assets of the stack
 * (infra/constructs/api-docs.ts).
 * The page's links are relative, so that they resolve under an API Gateway stage (`/prod/v2/docs`) as well.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** The page; its assets are at `${DOCS_PATH}/<name>`. */
export const DOCS_PATH = "/v2/docs";

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Switchyard API</title>
    <link rel="stylesheet" href="docs/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="docs/swagger-ui-bundle.js"></script>
    <script src="docs/init.js"></script>
  </body>
</html>
`;

/** Swagger UI on the document beside the page: `/v2/openapi.json`, under whatever stage the page is. */
const INIT = `window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", window.location.href).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  tryItOutEnabled: false,
});
`;

/** A file served as it is (no handler runs for it): locally by the local server, on AWS from S3. */
export interface StaticFile {
  contentType: string;
  /** Where the file is on this machine. */
  path: string;
  /** Response headers beside its Content-Type and `X-Content-Type-Options: nosniff`. */
  headers?: Record<string, string>;
}

/** The folder of swagger-ui-dist's built files. */
const swaggerUiDir = () => dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));

let written: string | undefined;
/** The page and its init script, written once per process to a folder of their own. */
function ownFilesDir(): string {
  if (!written) {
    written = mkdtempSync(join(tmpdir(), "switchyard-docs-"));
    writeFileSync(join(written, "index.html"), PAGE);
    writeFileSync(join(written, "init.js"), INIT);
  }
  return written;
}

/** Every file of the docs, by its name under DOCS_PATH ("" is the page itself). */
export function docsFiles(): Record<string, StaticFile> {
  const [own, swagger] = [ownFilesDir(), swaggerUiDir()];
  const script = "text/javascript; charset=utf-8";
  return {
    "": { contentType: "text/html; charset=utf-8", path: join(own, "index.html") },
    "init.js": { contentType: script, path: join(own, "init.js") },
    "swagger-ui.css": { contentType: "text/css; charset=utf-8", path: join(swagger, "swagger-ui.css") },
    "swagger-ui-bundle.js": { contentType: script, path: join(swagger, "swagger-ui-bundle.js") },
  };
}
