import type { z } from 'zod';
import {
  BackupResponse,
  BackupStrategyRequest,
  BackupsResponse,
  CreateBackupRequest,
  PutBackupPolicyRequest,
} from '../backups/schemas.ts';
import {
  CreateDatastoreVersionRequest,
  CreateFlavorRequest,
  DatastoresResponse,
  FlavorResponse,
  FlavorsResponse,
  UpdateDatastoreVersionRequest,
} from '../catalog/schemas.ts';
import {
  ConfigurationsResponse,
  CreateConfigurationRequest,
  PatchConfigurationRequest,
  PutConfigurationRequest,
} from '../configurations/schemas.ts';
import {
  ChangePasswordsRequest,
  CreateDatabasesRequest,
  CreateUsersRequest,
  DatabasesResponse,
  EnableRootRequest,
  GrantAccessRequest,
  UpdateUserRequest,
  UsersResponse,
} from '../databases/schemas.ts';
import { AuthRequest } from '../identity/schemas.ts';
import {
  ActionRequest,
  CreateInstanceRequest,
  InstanceResponse,
  InstancesResponse,
  UpdateInstanceRequest,
} from '../instances/schemas.ts';
import { LimitsResponse, QuotasResponse, UpdateQuotasRequest } from '../quotas/schemas.ts';
import { VersionsResponse } from './schemas.ts';

// Every route the API serves, with the request body and answer it declares: the OpenAPI
// description is generated from this table (document.ts), and a test holds it to serverless.yml.

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  summary: string;
  tag: string;
  /** Keystone and the version document need no token. */
  public?: boolean;
  body?: z.ZodType;
  /** The success status and its body (undefined: no body, or one not described yet). */
  status: number;
  response?: z.ZodType;
}

const p = '/v1.0/{project_id}';
const i = `${p}/instances/{instance_id}`;
const dv = `${p}/datastores/{datastore_id}/versions`;

const route = (
  method: Route['method'],
  path: string,
  tag: string,
  summary: string,
  rest: Partial<Pick<Route, 'body' | 'status' | 'response' | 'public'>> = {},
): Route => ({ method, path, tag, summary, status: 200, ...rest });

export const ROUTES: Route[] = [
  route('GET', '/', 'versions', "Trove's version document", { public: true, response: VersionsResponse }),
  route('GET', '/openapi.json', 'versions', 'This OpenAPI description', { public: true }),
  route('GET', '/docs', 'versions', 'This description as a page', { public: true }),

  route('GET', '/v3', 'identity', "Keystone's version document", { public: true }),
  route('POST', '/v3/auth/tokens', 'identity', 'Issue a token (password method, project scope)', {
    public: true,
    body: AuthRequest,
    status: 201,
  }),
  route('GET', '/v3/auth/tokens', 'identity', 'Validate X-Subject-Token', { public: true }),
  route('DELETE', '/v3/auth/tokens', 'identity', 'Revoke X-Subject-Token', { public: true, status: 204 }),
  route('GET', '/v3/projects', 'identity', 'List projects (admin)', { public: true }),
  route('GET', '/v3/projects/{project_id}', 'identity', 'Show a project', { public: true }),
  route('GET', '/v3/users/{user_id}', 'identity', 'Show a user', { public: true }),

  route('GET', `${p}/instances`, 'instances', 'List instances', { response: InstancesResponse }),
  route('GET', `${p}/instances/detail`, 'instances', 'List instances with details', {
    response: InstancesResponse,
  }),
  route('POST', `${p}/instances`, 'instances', 'Create an instance', {
    body: CreateInstanceRequest,
    response: InstanceResponse,
  }),
  route('GET', i, 'instances', 'Show an instance', { response: InstanceResponse }),
  route('PUT', i, 'instances', 'Update an instance', { body: UpdateInstanceRequest, status: 202 }),
  route('PATCH', i, 'instances', 'Update an instance', { body: UpdateInstanceRequest, status: 202 }),
  route('DELETE', i, 'instances', 'Delete an instance', { status: 202 }),
  route('POST', `${i}/action`, 'instances', 'Restart or reset the status of an instance', {
    body: ActionRequest,
    status: 202,
  }),
  route('GET', `${i}/configuration`, 'instances', "The instance's effective configuration"),
  route('GET', `${i}/ssl`, 'instances', "The instance's TLS certificate"),
  route('GET', `${p}/limits`, 'instances', "The project's absolute limits", { response: LimitsResponse }),

  route('GET', `${i}/databases`, 'databases', 'List databases', { response: DatabasesResponse }),
  route('POST', `${i}/databases`, 'databases', 'Create databases', {
    body: CreateDatabasesRequest,
    status: 202,
  }),
  route('GET', `${i}/databases/{database}`, 'databases', 'Not supported (501), as in Trove'),
  route('DELETE', `${i}/databases/{database}`, 'databases', 'Delete a database', { status: 202 }),
  route('GET', `${i}/users`, 'users', 'List users', { response: UsersResponse }),
  route('POST', `${i}/users`, 'users', 'Create users', { body: CreateUsersRequest, status: 202 }),
  route('PUT', `${i}/users`, 'users', "Change users' passwords", {
    body: ChangePasswordsRequest,
    status: 202,
  }),
  route('GET', `${i}/users/{user}`, 'users', 'Show a user (name or name@host)'),
  route('PUT', `${i}/users/{user}`, 'users', "Change a user's name, host or password", {
    body: UpdateUserRequest,
    status: 202,
  }),
  route('DELETE', `${i}/users/{user}`, 'users', 'Delete a user', { status: 202 }),
  route('GET', `${i}/users/{user}/databases`, 'users', "A user's databases"),
  route('PUT', `${i}/users/{user}/databases`, 'users', 'Grant access to databases', {
    body: GrantAccessRequest,
    status: 202,
  }),
  route('DELETE', `${i}/users/{user}/databases/{database}`, 'users', 'Revoke access to a database', {
    status: 202,
  }),
  route('GET', `${i}/root`, 'root', 'Whether root was ever enabled'),
  route('POST', `${i}/root`, 'root', 'Enable root (the password is returned once)', {
    body: EnableRootRequest,
  }),
  route('DELETE', `${i}/root`, 'root', 'Disable root', { status: 204 }),

  route('GET', `${p}/backups`, 'backups', 'List backups', { response: BackupsResponse }),
  route('POST', `${p}/backups`, 'backups', 'Create a backup', {
    body: CreateBackupRequest,
    status: 202,
    response: BackupResponse,
  }),
  route('GET', `${p}/backups/{backup_id}`, 'backups', 'Show a backup', { response: BackupResponse }),
  route('DELETE', `${p}/backups/{backup_id}`, 'backups', 'Delete a backup (and its incrementals)', {
    status: 202,
  }),
  route('GET', `${i}/backups`, 'backups', "An instance's backups", { response: BackupsResponse }),
  route('POST', `${p}/backup_strategies`, 'backups', 'Create a backup strategy', {
    body: BackupStrategyRequest,
    status: 202,
  }),
  route('GET', `${p}/backup_strategies`, 'backups', 'List backup strategies'),
  route('DELETE', `${p}/backup_strategies`, 'backups', 'Delete a backup strategy', { status: 202 }),
  route('PUT', `${i}/backup_policy`, 'backups', 'Set the backup schedule and retention (Troveless)', {
    body: PutBackupPolicyRequest,
  }),
  route('GET', `${i}/backup_policy`, 'backups', 'Show the backup policy (Troveless)'),
  route('DELETE', `${i}/backup_policy`, 'backups', 'Remove the backup policy (Troveless)', { status: 202 }),

  route('GET', `${p}/configurations`, 'configurations', 'List configuration groups', {
    response: ConfigurationsResponse,
  }),
  route('POST', `${p}/configurations`, 'configurations', 'Create a configuration group', {
    body: CreateConfigurationRequest,
  }),
  route('GET', `${p}/configurations/{configuration_id}`, 'configurations', 'Show a configuration group'),
  route('PATCH', `${p}/configurations/{configuration_id}`, 'configurations', 'Merge values', {
    body: PatchConfigurationRequest,
  }),
  route('PUT', `${p}/configurations/{configuration_id}`, 'configurations', 'Replace values', {
    body: PutConfigurationRequest,
    status: 202,
  }),
  route(
    'DELETE',
    `${p}/configurations/{configuration_id}`,
    'configurations',
    'Delete a configuration group',
    {
      status: 202,
    },
  ),
  route(
    'GET',
    `${p}/configurations/{configuration_id}/instances`,
    'configurations',
    'Instances using a group',
  ),

  route('GET', `${p}/datastores`, 'datastores', 'List datastores', { response: DatastoresResponse }),
  route('GET', `${p}/datastores/{datastore_id}`, 'datastores', 'Show a datastore'),
  route('GET', dv, 'datastores', "A datastore's versions"),
  route('GET', `${dv}/{version_id}`, 'datastores', 'Show a datastore version'),
  route('GET', `${dv}/{version_id}/flavors`, 'datastores', 'Flavors for a datastore version', {
    response: FlavorsResponse,
  }),
  route('GET', `${dv}/{version_id}/parameters`, 'datastores', 'Configuration parameters of a version'),
  route('GET', `${dv}/{version_id}/parameters/{name}`, 'datastores', 'One configuration parameter'),
  route('GET', `${p}/datastores/versions/{version_id}`, 'datastores', 'Show a datastore version by id'),
  route(
    'GET',
    `${p}/datastores/versions/{version_id}/parameters`,
    'datastores',
    'Parameters of a version by id',
  ),
  route(
    'GET',
    `${p}/datastores/versions/{version_id}/parameters/{name}`,
    'datastores',
    'One parameter by id',
  ),
  route('GET', `${p}/flavors`, 'flavors', 'List flavors', { response: FlavorsResponse }),
  route('GET', `${p}/flavors/{flavor_id}`, 'flavors', 'Show a flavor', { response: FlavorResponse }),

  route('GET', `${p}/mgmt/datastore-versions`, 'management', 'List datastore versions (admin)'),
  route('POST', `${p}/mgmt/datastore-versions`, 'management', 'Register a datastore version (admin)', {
    body: CreateDatastoreVersionRequest,
    status: 202,
  }),
  route('GET', `${p}/mgmt/datastore-versions/{version_id}`, 'management', 'Show a datastore version (admin)'),
  route(
    'PATCH',
    `${p}/mgmt/datastore-versions/{version_id}`,
    'management',
    'Update a datastore version (admin)',
    {
      body: UpdateDatastoreVersionRequest,
      status: 202,
    },
  ),
  route('POST', `${p}/mgmt/flavors`, 'management', 'Create a flavor (admin)', { body: CreateFlavorRequest }),
  route('DELETE', `${p}/mgmt/flavors/{flavor_id}`, 'management', 'Delete a flavor (admin)', { status: 202 }),
  route('GET', `${p}/mgmt/quotas/{target_project_id}`, 'management', "A project's quotas", {
    response: QuotasResponse,
  }),
  route('PUT', `${p}/mgmt/quotas/{target_project_id}`, 'management', "Set a project's quotas (admin)", {
    body: UpdateQuotasRequest,
  }),
];
