import { z } from 'zod';

// Response shapes every resource shares, in Trove's words. Objects stay open (Trove adds keys over
// releases; a client must ignore the ones it does not know); the keys named are always there.

export const Link = z.object({ rel: z.string(), href: z.string() });

/** Trove's fault body: `{"badRequest": {"code": 400, "message": "..."}}`, named after the status. */
export const FaultResponse = z
  .record(
    z.string(),
    z.object({
      code: z.int(),
      message: z.string(),
      // The rate limiter's overLimit (413) says which limit and how many seconds to wait.
      details: z.string().optional(),
      retryAfter: z.string().optional(),
    }),
  )
  .describe("Trove's fault body, keyed by the fault's name (badRequest, itemNotFound, ...)");

export const VersionsResponse = z.object({
  versions: z.array(
    z.looseObject({ id: z.string(), status: z.string(), updated: z.string(), links: z.array(Link) }),
  ),
});
export type VersionsResponse = z.infer<typeof VersionsResponse>;

/** `GET /openapi.json`: this description itself (document.ts), checked here only at its top. */
export const OpenApiDocumentResponse = z.looseObject({
  openapi: z.literal('3.1.0'),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.record(z.string(), z.looseObject({ responses: z.looseObject({}) }))),
});

/** `GET /docs`: the description as one HTML page (page.ts). */
export const DocsPage = z.string().describe('An HTML page');
