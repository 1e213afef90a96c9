import { randomBytes } from 'node:crypto';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { findProject, findUser, grantRole, newIdentityId, putProject, putUser } from './directory.ts';
import { hashPassword } from './passwords.ts';

// A deployment's first admin. The package holds no user and no default password: the first
// deploy creates `admin` with a random password that only the SSM SecureString holds (the
// custom resource's response carries nothing of it). An existing admin is never touched.

export type SecretSink = (password: string) => Promise<void>;

export function ssmSink(parameterName: string, ssm = new SSMClient({})): SecretSink {
  return async (password) => {
    // Overwrite: a parameter left by an attempt that failed before the user was written
    // belongs to no one; the admin user does not exist yet (checked before calling).
    await ssm.send(
      new PutParameterCommand({
        Name: parameterName,
        Type: 'SecureString',
        Value: password,
        Overwrite: true,
        Description: 'Troveless: password of the first admin user (created by the first deploy)',
      }),
    );
  };
}

export async function bootstrapAdmin(sink: SecretSink): Promise<{ created: boolean; user_id: string }> {
  const existing = await findUser({ name: 'admin', domainId: 'default' });
  if (existing) return { created: false, user_id: existing.id };
  const project = (await findProject({ name: 'admin', domainId: 'default' })) ?? {
    id: newIdentityId(),
    name: 'admin',
    domain_id: 'default',
  };
  const password = randomBytes(24).toString('base64url');
  // The secret is stored first: a user whose password nobody can read would lock the operator out.
  await sink(password);
  await putProject(project, true);
  const user = {
    id: newIdentityId(),
    name: 'admin',
    domain_id: 'default',
    password_hash: await hashPassword(password),
    default_project_id: project.id,
  };
  await putUser(user, true);
  await grantRole(user.id, project.id, 'admin');
  return { created: true, user_id: user.id };
}
