// Adds or updates a user in the identity directory (config/identity.json by default), storing
// only the password's scrypt hash:
//   npm run identity:user -- <name> <password> <project-name> <role> [directory.json]
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { IdentityDirectory } from '../lib/identity/directory.ts';
import { hashPassword } from '../lib/identity/passwords.ts';

const [name, password, projectName, role, file = 'config/identity.json'] = process.argv.slice(2);
if (!name || !password || !projectName || !role) {
  console.error('usage: npm run identity:user -- <name> <password> <project-name> <role> [directory.json]');
  process.exit(2);
}
const dir = IdentityDirectory.parse(JSON.parse(await readFile(file, 'utf8')));
let project = dir.projects.find((p) => p.name === projectName && p.domain_id === 'default');
if (!project) {
  project = { id: randomBytes(16).toString('hex'), name: projectName, domain_id: 'default' };
  dir.projects.push(project);
}
const existing = dir.users.find((u) => u.name === name && u.domain_id === 'default');
const user = existing ?? {
  id: randomBytes(16).toString('hex'),
  name,
  domain_id: 'default',
  password_hash: '',
  default_project: project.id,
  roles: [],
};
user.password_hash = await hashPassword(password);
if (!user.roles.some((r) => r.project === project.id && r.role === role))
  user.roles.push({ project: project.id, role });
if (!existing) dir.users.push(user);
await writeFile(file, `${JSON.stringify(dir, null, 2)}\n`);
console.log(`user ${name} (${user.id}) has role ${role} on project ${projectName} (${project.id})`);
