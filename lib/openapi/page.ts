import type { openApiDocument } from './document.ts';

// `GET /docs`: the description as one plain page, rendered here so nothing is fetched from a CDN
// at run time (the API must work with no way out to the internet).

const html = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

type Operation = {
  tags?: string[];
  summary?: string;
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
};

const schemaBlock = (label: string, schema: unknown) =>
  `<details><summary>${html(label)}</summary><pre>${html(JSON.stringify(schema, null, 2))}</pre></details>`;

export function docsPage(doc: ReturnType<typeof openApiDocument>): string {
  const byTag = new Map<string, string[]>();
  const paths = doc.paths as Record<string, Record<string, Operation>>;
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const parts = [
        `<h3><code>${method.toUpperCase()} ${html(path)}</code></h3><p>${html(op.summary ?? '')}</p>`,
      ];
      const body = op.requestBody?.content['application/json']?.schema;
      if (body) parts.push(schemaBlock('Request body', body));
      for (const [status, answer] of Object.entries(op.responses)) {
        const schema = answer.content?.['application/json']?.schema;
        parts.push(
          schema
            ? schemaBlock(`${status}: ${answer.description}`, schema)
            : `<p>${html(status)}: no body described</p>`,
        );
      }
      const tag = op.tags?.[0] ?? 'other';
      byTag.set(tag, [...(byTag.get(tag) ?? []), `<section>${parts.join('')}</section>`]);
    }
  }
  const info = doc.info as { title: string; description: string };
  const toc = [...byTag.keys()].map((t) => `<a href="#${html(t)}">${html(t)}</a>`).join(' · ');
  const sections = [...byTag]
    .map(([t, ops]) => `<h2 id="${html(t)}">${html(t)}</h2>${ops.join('')}`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${html(info.title)} API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
section{border-top:1px solid #ddd;padding:.3rem 0}h3{margin:.6rem 0 .2rem;font-size:1rem}
pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:12px}</style></head>
<body><h1>${html(info.title)} API</h1><p>${html(info.description)}
The same description as OpenAPI 3.1: <a href="openapi.json">openapi.json</a>.</p><p>${toc}</p>${sections}</body></html>`;
}
