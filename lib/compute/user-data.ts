import { createHash } from 'node:crypto';
import { systemdEnvironment } from './agent-runtime.ts';
import type { AgentConfigFile } from './driver.ts';

// EC2 user data for a guest: a MIME multi-part message that cloud-init reads. The cloud-config
// part writes the agent's config (0600; it names the SSM parameter holding the instance key,
// never the key itself: user data is readable from IMDS by any process) and starts the agent's
// systemd unit, the way Trove moved from Nova "personality" files to user data. A shell script
// part is optional (site-specific preparation, e.g. mounting the data volume). A drop-in beside the
// image's unit gives the agent the runtime environment every agent runs with (agent-runtime.ts);
// it is written before the daemon-reload, so the unit's first start has it.

export const AGENT_CONFIG_PATH = '/etc/troveless/agent.json';
export const AGENT_SERVICE = 'troveless-guestagent';
/** The drop-in (in the unit's `.service.d/`) that gives the agent its runtime environment. */
export const RUNTIME_DROP_IN = 'troveless-runtime.conf';
/** EC2 rejects user data over 16 KB (before base64). */
export const MAX_USER_DATA_BYTES = 16 * 1024;

export interface UserDataInput {
  config: AgentConfigFile;
  configPath?: string;
  service?: string;
  /** A second part, run by cloud-init as a shell script (after the cloud-config modules). */
  script?: string;
}

/** YAML 1.1 and 1.2 read a JSON string as a double-quoted scalar: no YAML escaping of our own. */
const q = (value: string) => JSON.stringify(value);

export function cloudConfig({
  config,
  configPath = AGENT_CONFIG_PATH,
  service = AGENT_SERVICE,
}: UserDataInput): string {
  // base64 content: the JSON goes through byte for byte, whatever characters it holds.
  const content = Buffer.from(JSON.stringify(config, null, 2)).toString('base64');
  const dropIn = Buffer.from(systemdEnvironment()).toString('base64');
  return [
    '#cloud-config',
    'write_files:',
    `  - path: ${q(configPath)}`,
    `    owner: ${q('root:root')}`,
    `    permissions: ${q('0600')}`,
    `    encoding: ${q('b64')}`,
    `    content: ${q(content)}`,
    `  - path: ${q(`/etc/systemd/system/${service}.service.d/${RUNTIME_DROP_IN}`)}`,
    `    owner: ${q('root:root')}`,
    `    permissions: ${q('0644')}`,
    `    encoding: ${q('b64')}`,
    `    content: ${q(dropIn)}`,
    'runcmd:',
    `  - [${q('systemctl')}, ${q('daemon-reload')}]`,
    `  - [${q('systemctl')}, ${q('enable')}, ${q('--now')}, ${q(`${service}.service`)}]`,
    '',
  ].join('\n');
}

function part(contentType: string, filename: string, body: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for bytes outside 7-bit ASCII
  const encoding = /^[\x00-\x7f]*$/.test(body) ? '7bit' : '8bit';
  return [
    `Content-Type: ${contentType}; charset="utf-8"`,
    'MIME-Version: 1.0',
    `Content-Transfer-Encoding: ${encoding}`,
    `Content-Disposition: attachment; filename="${filename}"`,
    '',
    body.endsWith('\n') ? body : `${body}\n`,
  ].join('\n');
}

/**
 * The user data as text (the caller base64-encodes it). Deterministic: the boundary comes from
 * the content, so a retried launch sends identical parameters (EC2 rejects a repeated
 * ClientToken whose parameters differ).
 */
export function buildUserData(input: UserDataInput): string {
  if (input.config.key)
    throw new Error('the instance key must not travel in user data (IMDS serves it to anyone)');
  const parts = [part('text/cloud-config', 'cloud-config.yaml', cloudConfig(input))];
  if (input.script) parts.push(part('text/x-shellscript', 'troveless.sh', input.script));
  const digest = createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
  const boundary = `==troveless-${digest}==`;
  if (parts.some((p) => p.includes(`--${boundary}`))) throw new Error('user data contains its MIME boundary');
  const message = [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    'MIME-Version: 1.0',
    '',
    ...parts.map((p) => `--${boundary}\n${p}`),
    `--${boundary}--`,
    '',
  ].join('\n');
  const size = Buffer.byteLength(message);
  if (size > MAX_USER_DATA_BYTES)
    throw new Error(`user data is ${size} bytes; EC2 allows ${MAX_USER_DATA_BYTES}`);
  return message;
}
