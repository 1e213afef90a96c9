import { execFile } from 'node:child_process';

// Runs the host tools isolation needs (useradd, mkfs.ext4, mount, nft...) with a fixed
// environment; a failure names the tool and carries its own error output.

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/** Runs a tool and resolves with its exit code (never rejects for a non-zero exit). */
export function tryTool(
  command: string,
  args: string[],
  { input, timeoutMs = 60_000 }: { input?: string; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { env: TOOL_ENV, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(new Error(`${command}: ${err.message}`));
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs a tool; a non-zero exit is an error naming the tool, its arguments and its output. */
export async function tool(
  command: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<string> {
  const out = await tryTool(command, args, opts);
  if (out.code !== 0) {
    const detail = `${out.stderr}\n${out.stdout}`.trim().split('\n').slice(-5).join('; ');
    throw new Error(`${command} ${args.join(' ')} failed (exit ${out.code}): ${detail}`);
  }
  return out.stdout;
}
