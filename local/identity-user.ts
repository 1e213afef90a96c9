// Adds a user to the identity table, or sets an existing user's password and adds a role,
// storing only the password's scrypt hash:
//   npm run identity:user -- <name> <password> <project-name> <role>
// Against the running local cloud by default (DynamoDB on TROVELESS_DYNAMODB_PORT, table
// troveless-<TROVELESS_LOCAL_STAGE>-identity); AWS_ENDPOINT_URL_DYNAMODB and
// TROVELESS_IDENTITY_TABLE point it elsewhere (a deployed stack's table, with AWS credentials).
import { localCredentials } from './dynamodb.ts';

const [name, password, projectName, role] = process.argv.slice(2);
if (!name || !password || !projectName || !role) {
  console.error('usage: npm run identity:user -- <name> <password> <project-name> <role>');
  process.exit(2);
}
// Before lib/ is loaded: its clients and settings read the environment once.
const env = process.env;
// Neither an endpoint nor a table named: the local cloud's DynamoDB, whatever AWS credentials
// the shell happens to hold.
if (!env.AWS_ENDPOINT_URL_DYNAMODB && !env.TROVELESS_IDENTITY_TABLE) {
  env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${env.TROVELESS_DYNAMODB_PORT || 8000}`;
  env.AWS_ACCESS_KEY_ID = localCredentials.accessKeyId;
  env.AWS_SECRET_ACCESS_KEY = localCredentials.secretAccessKey;
  delete env.AWS_SESSION_TOKEN;
}
env.TROVELESS_IDENTITY_TABLE ||= `troveless-${env.TROVELESS_LOCAL_STAGE || 'local'}-identity`;
env.AWS_REGION ||= 'us-east-1';

const { findProject, findUser, grantRole, newIdentityId, putProject, putUser, setPassword } = await import(
  '../lib/identity/directory.ts'
);
const { hashPassword } = await import('../lib/identity/passwords.ts');

let project = await findProject({ name: projectName, domainId: 'default' });
if (!project) {
  project = { id: newIdentityId(), name: projectName, domain_id: 'default' };
  await putProject(project, true);
}
const hash = await hashPassword(password);
let user = await findUser({ name, domainId: 'default' });
if (user) {
  await setPassword(user.id, hash);
} else {
  user = {
    id: newIdentityId(),
    name,
    domain_id: 'default',
    password_hash: hash,
    default_project_id: project.id,
  };
  await putUser(user, true);
}
await grantRole(user.id, project.id, role);
console.log(`user ${name} (${user.id}) has role ${role} on project ${projectName} (${project.id})`);
