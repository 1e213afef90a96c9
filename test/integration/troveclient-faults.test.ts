import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { RateLimited, TroveError, UNAVAILABLE_MESSAGE } from '../../lib/errors.ts';
import { troveErrors } from '../../lib/http/errors.ts';
import { ensureCommand } from '../../local/prerequisites.ts';

// Our fault answers as python-troveclient reads them: each response our error middleware builds
// (status, headers, body) is handed to troveclient's own `from_response`, which the openstack
// CLI and every troveclient script go through on any answer that is not a success. A fault the
// client cannot turn into its exception reaches the user as a Python error instead of our
// message: a 503 with Retry-After did ("HttpError.__init__() got an unexpected keyword argument
// 'retry_after'"), since troveclient passes that header to every fault class and only its 413's
// takes it.

type Answer = { statusCode: number; headers?: Record<string, string>; body?: string };

async function answerFor(error: Error): Promise<Answer> {
  const request = {
    error,
    event: { rawPath: '/v1.0/p/instances' },
    context: { awsRequestId: 'req-7' },
    response: undefined as unknown as Answer,
  };
  await troveErrors().onError?.(request as never);
  return request.response;
}

const READ = `
import json, sys
from requests.models import Response
from requests.structures import CaseInsensitiveDict
from troveclient import exceptions
answer = json.load(sys.stdin)
response = Response()
response.status_code = answer['statusCode']
response.headers = CaseInsensitiveDict(answer.get('headers') or {})
response._content = (answer.get('body') or '').encode()
response.encoding = 'utf-8'
try:
    e = exceptions.from_response(response, 'GET', 'http://127.0.0.1/v1.0/p/instances')
    print(json.dumps({'class': type(e).__name__, 'text': str(e), 'retry_after': getattr(e, 'retry_after', None)}))
except Exception as failure:
    print(json.dumps({'failure': '%s: %s' % (type(failure).__name__, failure)}))
`;

/** The Python the openstack CLI runs on (its script's #! line), where troveclient is installed. */
function cliPython(): string {
  const script = execFileSync('sh', ['-c', 'command -v openstack'], { encoding: 'utf8' }).trim();
  const shebang = readFileSync(script, 'utf8').split('\n')[0] ?? '';
  return /^#!\s*(\S+)/.exec(shebang)?.[1] ?? 'python3';
}

/** What troveclient makes of `answer`: its exception's class and text, or its own failure. */
async function troveclientReads(answer: Answer): Promise<Record<string, unknown>> {
  const child = promisify(execFile)(cliPython(), ['-c', READ], { timeout: 30_000 });
  child.child.stdin?.end(JSON.stringify(answer));
  return JSON.parse((await child).stdout) as Record<string, unknown>;
}

describe('our faults, as python-troveclient reads them', () => {
  beforeAll(() => {
    ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']);
  }, 600_000);

  it('a backing service out of reach: ServiceUnavailable with our message, not a client crash', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(await troveclientReads(await answerFor(refused))).toEqual({
      class: 'ServiceUnavailable',
      text: `${UNAVAILABLE_MESSAGE} (HTTP 503)`,
      retry_after: null,
    });
  });

  it('a rate limit: RequestEntityTooLarge with the seconds to wait', async () => {
    const limited = new RateLimited('Only 200 GET request(s) can be made to * every minute.', 17);
    expect(await troveclientReads(await answerFor(limited))).toEqual({
      class: 'RequestEntityTooLarge',
      text: 'This request was rate-limited. (HTTP 413)',
      retry_after: 17,
    });
  });

  it("a client's mistake and a bug: NotFound and InternalServerError with our messages", async () => {
    expect(
      await troveclientReads(await answerFor(new TroveError(404, "Instance 'x' cannot be found."))),
    ).toEqual({
      class: 'NotFound',
      text: "Instance 'x' cannot be found. (HTTP 404)",
      retry_after: null,
    });
    const bug = await troveclientReads(await answerFor(new TypeError('x is undefined')));
    expect(bug).toMatchObject({ class: 'InternalServerError', retry_after: null });
    expect(bug.text).toMatch(/\(req-7\).*\(HTTP 500\)$/);
  });
});
