import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { config } from '../config.ts';

// The local user directory: who may log in, to which projects, with which roles. It stands where
// Keystone's identity and assignment backends would; ids are Keystone-style hex strings.
const Domain = z.object({ id: z.string().min(1), name: z.string().min(1) });
const Project = z.object({
  id: z.string().regex(/^[0-9a-f]{32}$/),
  name: z.string().min(1),
  domain_id: z.string(),
});
const User = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  domain_id: z.string(),
  password_hash: z.string().startsWith('scrypt$'),
  default_project: z.string().optional(),
  roles: z.array(z.object({ project: z.string(), role: z.string() })),
});
export const IdentityDirectory = z.object({
  domains: z.array(Domain),
  projects: z.array(Project),
  users: z.array(User),
});
export type IdentityDirectory = z.infer<typeof IdentityDirectory>;
export type DirectoryUser = z.infer<typeof User>;
export type DirectoryProject = z.infer<typeof Project>;

let cached: Promise<IdentityDirectory> | undefined;

export function loadDirectory(path: string = config.identityFile): Promise<IdentityDirectory> {
  cached ??= readFile(path, 'utf8').then((text) => IdentityDirectory.parse(JSON.parse(text)));
  return cached;
}

export interface ProjectRef {
  id?: string;
  name?: string;
  domainId?: string;
  domainName?: string;
}

export function findDomainId(
  dir: IdentityDirectory,
  ref: { id?: string; name?: string },
): string | undefined {
  return dir.domains.find((d) => (ref.id ? d.id === ref.id : d.name === ref.name))?.id;
}

export function findProject(dir: IdentityDirectory, ref: ProjectRef): DirectoryProject | undefined {
  if (ref.id) return dir.projects.find((p) => p.id === ref.id);
  const domainId = findDomainId(dir, { id: ref.domainId, name: ref.domainName });
  return dir.projects.find((p) => p.name === ref.name && p.domain_id === domainId);
}

export function rolesOn(user: DirectoryUser, projectId: string): string[] {
  return user.roles.filter((r) => r.project === projectId).map((r) => r.role);
}
