import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureCommand } from '../../local/prerequisites.ts';
import { api } from './helpers.ts';

const run = promisify(execFile);

// The real clients: python-openstackclient with the Trove plugin, through the password flow
// against our Keystone endpoint, exactly as the README tells users to run them.
function openstackAs(password: string, ...args: string[]) {
  const auth = {
    'os-auth-url': `${api()}/v3`,
    'os-identity-api-version': '3',
    'os-username': 'admin',
    'os-password': password,
    'os-project-name': 'admin',
    'os-user-domain-id': 'default',
    'os-project-domain-id': 'default',
    'os-region-name': 'RegionOne',
  };
  const flags = Object.entries(auth).flatMap(([k, v]) => [`--${k}`, v]);
  return run('openstack', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 60_000,
  });
}
const openstack = (...args: string[]) => openstackAs('admin', ...args);

describe('openstack CLI', () => {
  beforeAll(() => ensureCommand('openstack', ['python3-openstackclient', 'python3-troveclient']));

  it('lists no instances for a new project', async () => {
    const table = await openstack('database', 'instance', 'list');
    expect(table.stderr).not.toMatch(/error|exception/i);
    const json = await openstack('database', 'instance', 'list', '-f', 'json');
    expect(JSON.parse(json.stdout)).toEqual([]);
  });

  it('reports a wrong password as an authentication failure', async () => {
    const failed = openstackAs('wrong', 'database', 'instance', 'list');
    await expect(failed).rejects.toMatchObject({ stderr: expect.stringMatching(/authentication/i) });
  });
});
