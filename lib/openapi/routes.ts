import type { z } from 'zod';
import {
  BackupPolicyResponse,
  BackupPolicyStateResponse,
  BackupResponse,
  BackupStrategiesResponse,
  BackupStrategyRequest,
  BackupStrategyResponse,
  BackupsResponse,
  CreateBackupRequest,
  PutBackupPolicyRequest,
} from '../backups/schemas.ts';
import {
  CreateDatastoreVersionRequest,
  CreateFlavorRequest,
  DatastoreResponse,
  DatastoresResponse,
  DatastoreVersionResponse,
  DatastoreVersionsResponse,
  FlavorResponse,
  FlavorsResponse,
  MgmtVersionResponse,
  MgmtVersionsResponse,
  UpdateDatastoreVersionRequest,
  VolumeTypesResponse,
} from '../catalog/schemas.ts';
import { MgmtClusterActionRequest, MgmtClusterResponse, MgmtClustersResponse } from '../clusters/mgmt.ts';
import {
  ClusterActionRequest,
  ClusterResponse,
  ClustersResponse,
  CreateClusterRequest,
} from '../clusters/schemas.ts';
import {
  ConfigurationInstancesResponse,
  ConfigurationResponse,
  ConfigurationsResponse,
  CreateConfigurationRequest,
  ParametersResponse,
  ParameterView,
  PatchConfigurationRequest,
  PutConfigurationRequest,
} from '../configurations/schemas.ts';
import {
  AccessResponse,
  ChangePasswordsRequest,
  CreateDatabasesRequest,
  CreateUsersRequest,
  DatabasesResponse,
  EnableRootRequest,
  GrantAccessRequest,
  RootEnabledResponse,
  RootStatusResponse,
  UpdateUserRequest,
  UserResponse,
  UsersResponse,
} from '../databases/schemas.ts';
import {
  AuthRequest,
  KeystoneError,
  UserResponse as KeystoneUserResponse,
  KeystoneVersionResponse,
  ProjectResponse,
  ProjectsResponse,
  TokenResponse,
} from '../identity/schemas.ts';
import {
  ActionRequest,
  CreateInstanceRequest,
  InstanceConfigurationResponse,
  InstanceResponse,
  InstancesDetailResponse,
  InstancesResponse,
  MgmtActionRequest,
  MgmtInstanceResponse,
  MgmtInstancesResponse,
  RootHistoryResponse,
  SslResponse,
  UpdateInstanceRequest,
} from '../instances/schemas.ts';
import { LogActionRequest, LogResponse, LogsResponse } from '../logs/schemas.ts';
import { MetricsResponse } from '../metrics/schemas.ts';
import {
  ApplyModulesRequest,
  CreateModuleRequest,
  GuestModulesResponse,
  ModuleInstancesResponse,
  ModuleResponse,
  ModulesResponse,
  ReapplyModuleRequest,
  UpdateModuleRequest,
} from '../modules/schemas.ts';
import {
  LimitsResponse,
  QuotasResponse,
  UpdatedQuotasResponse,
  UpdateQuotasRequest,
} from '../quotas/schemas.ts';
import { DocsPage, FaultResponse, OpenApiDocumentResponse, VersionsResponse } from './schemas.ts';

// Every route the API serves, with the request body and answer it declares: the OpenAPI
// description is generated from this table (document.ts), and a test holds it to serverless.yml.

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
  path: string;
  summary: string;
  tag: string;
  /** Keystone and the version document need no token. */
  public?: boolean;
  body?: z.ZodType;
  /** The success status and its body (undefined: the answer has no body, as Trove's 202s and 204s). */
  status: number;
  response?: z.ZodType;
  /** The success body's media type, when it is not JSON. */
  media?: string;
  /** The error body: Trove's fault, or Keystone's own error on the identity routes. */
  fault: z.ZodType;
}

const p = '/v1.0/{project_id}';
const i = `${p}/instances/{instance_id}`;
const dv = `${p}/datastores/{datastore_id}/versions`;
const v = `${p}/datastores/versions/{version_id}`;
const c = `${p}/configurations/{configuration_id}`;
const mv = `${p}/mgmt/datastore-versions/{version_id}`;
const md = `${p}/modules/{module_id}`;

const route = (
  method: Route['method'],
  path: string,
  tag: string,
  summary: string,
  rest: Partial<Omit<Route, 'method' | 'path' | 'tag' | 'summary'>> = {},
): Route => ({ method, path, tag, summary, status: 200, fault: FaultResponse, ...rest });

/** Keystone's routes: no Trove token, and Keystone's error body. */
const keystone = { public: true, fault: KeystoneError };

export const ROUTES: Route[] = [
  route('GET', '/', 'versions', "Trove's version document", { public: true, response: VersionsResponse }),
  route('OPTIONS', '/', 'versions', "Trove's version document (Trove's `/` answers any method)", {
    public: true,
    response: VersionsResponse,
  }),
  route('GET', '/openapi.json', 'versions', 'This OpenAPI description', {
    public: true,
    response: OpenApiDocumentResponse,
  }),
  route('GET', '/docs', 'versions', 'This description as a page', {
    public: true,
    response: DocsPage,
    media: 'text/html',
  }),

  route('GET', '/v3', 'identity', "Keystone's version document", {
    ...keystone,
    response: KeystoneVersionResponse,
  }),
  route('POST', '/v3/auth/tokens', 'identity', 'Issue a token (password method, project scope)', {
    ...keystone,
    body: AuthRequest,
    status: 201,
    response: TokenResponse,
  }),
  route('GET', '/v3/auth/tokens', 'identity', 'Validate X-Subject-Token', {
    ...keystone,
    response: TokenResponse,
  }),
  route('DELETE', '/v3/auth/tokens', 'identity', 'Revoke X-Subject-Token', { ...keystone, status: 204 }),
  route('GET', '/v3/projects', 'identity', 'List projects (admin)', {
    ...keystone,
    response: ProjectsResponse,
  }),
  route('GET', '/v3/projects/{project_id}', 'identity', 'Show a project', {
    ...keystone,
    response: ProjectResponse,
  }),
  route('GET', '/v3/users/{user_id}', 'identity', 'Show a user', {
    ...keystone,
    response: KeystoneUserResponse,
  }),

  route('GET', `${p}/instances`, 'instances', 'List instances', { response: InstancesResponse }),
  route('GET', `${p}/instances/detail`, 'instances', 'List instances with details', {
    response: InstancesDetailResponse,
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
  route('GET', `${i}/configuration`, 'instances', "The instance's effective configuration", {
    response: InstanceConfigurationResponse,
  }),
  route('GET', `${i}/ssl`, 'instances', "The instance's TLS certificate", { response: SslResponse }),
  route('GET', `${i}/log`, 'instances', "The instance's guest logs", { response: LogsResponse }),
  route('GET', `${i}/metrics`, 'instances', 'The last hour of heartbeats and engine counters (extension)', {
    response: MetricsResponse,
  }),
  route('POST', `${i}/log`, 'instances', 'Show, enable, disable, publish or discard a guest log', {
    body: LogActionRequest,
    response: LogResponse,
  }),
  route('GET', `${p}/clusters`, 'clusters', 'List clusters', { response: ClustersResponse }),
  route('POST', `${p}/clusters`, 'clusters', 'Create a cluster (Redis Cluster)', {
    body: CreateClusterRequest,
    response: ClusterResponse,
  }),
  route('GET', `${p}/clusters/{cluster_id}`, 'clusters', 'Show a cluster, its members and addresses', {
    response: ClusterResponse,
  }),
  route(
    'POST',
    `${p}/clusters/{cluster_id}`,
    'clusters',
    'One action on a cluster (`reset-status`, rolling `restart`, `upgrade`, `configuration_attach`/`_detach`)',
    {
      body: ClusterActionRequest,
      status: 202,
      response: ClusterResponse,
    },
  ),
  route('DELETE', `${p}/clusters/{cluster_id}`, 'clusters', 'Delete a cluster and its members', {
    status: 202,
  }),
  route(
    'GET',
    `${p}/clusters/{cluster_id}/instances/{instance_id}`,
    'clusters',
    'Show a member of a cluster',
    {
      response: InstanceResponse,
    },
  ),
  route('GET', `${p}/clusters/{cluster_id}/root`, 'clusters', "Whether the cluster's root was enabled", {
    response: RootStatusResponse,
  }),
  route('POST', `${p}/clusters/{cluster_id}/root`, 'clusters', 'One root password on every member', {
    body: EnableRootRequest,
    response: RootEnabledResponse,
  }),
  route('GET', `${p}/limits`, 'instances', "The project's absolute limits", { response: LimitsResponse }),

  route('GET', `${i}/databases`, 'databases', 'List databases', { response: DatabasesResponse }),
  route('POST', `${i}/databases`, 'databases', 'Create databases', {
    body: CreateDatabasesRequest,
    status: 202,
  }),
  route('GET', `${i}/databases/{database}`, 'databases', 'Not supported (501), as in Trove', {
    status: 501,
    response: FaultResponse,
  }),
  route('DELETE', `${i}/databases/{database}`, 'databases', 'Delete a database', { status: 202 }),
  route('GET', `${i}/users`, 'users', 'List users', { response: UsersResponse }),
  route('POST', `${i}/users`, 'users', 'Create users', { body: CreateUsersRequest, status: 202 }),
  route('PUT', `${i}/users`, 'users', "Change users' passwords", {
    body: ChangePasswordsRequest,
    status: 202,
  }),
  route('GET', `${i}/users/{user}`, 'users', 'Show a user (name or name@host)', { response: UserResponse }),
  route('PUT', `${i}/users/{user}`, 'users', "Change a user's name, host or password", {
    body: UpdateUserRequest,
    status: 202,
  }),
  route('DELETE', `${i}/users/{user}`, 'users', 'Delete a user', { status: 202 }),
  route('GET', `${i}/users/{user}/databases`, 'users', "A user's databases", { response: AccessResponse }),
  route('PUT', `${i}/users/{user}/databases`, 'users', 'Grant access to databases', {
    body: GrantAccessRequest,
    status: 202,
  }),
  route('DELETE', `${i}/users/{user}/databases/{database}`, 'users', 'Revoke access to a database', {
    status: 202,
  }),
  route('GET', `${i}/root`, 'root', 'Whether root is enabled', { response: RootStatusResponse }),
  route('POST', `${i}/root`, 'root', 'Enable root (the password is returned once)', {
    body: EnableRootRequest,
    response: RootEnabledResponse,
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
    response: BackupStrategyResponse,
  }),
  route('GET', `${p}/backup_strategies`, 'backups', 'List backup strategies', {
    response: BackupStrategiesResponse,
  }),
  route('DELETE', `${p}/backup_strategies`, 'backups', 'Delete a backup strategy', { status: 202 }),
  route('PUT', `${i}/backup_policy`, 'backups', 'Set the backup schedule and retention (Troveless)', {
    body: PutBackupPolicyRequest,
    response: BackupPolicyResponse,
  }),
  route('GET', `${i}/backup_policy`, 'backups', 'Show the backup policy (Troveless)', {
    response: BackupPolicyStateResponse,
  }),
  route('DELETE', `${i}/backup_policy`, 'backups', 'Remove the backup policy (Troveless)', { status: 202 }),

  route('GET', `${p}/configurations`, 'configurations', 'List configuration groups', {
    response: ConfigurationsResponse,
  }),
  route('POST', `${p}/configurations`, 'configurations', 'Create a configuration group', {
    body: CreateConfigurationRequest,
    response: ConfigurationResponse,
  }),
  route('GET', c, 'configurations', 'Show a configuration group', { response: ConfigurationResponse }),
  route('PATCH', c, 'configurations', 'Merge values (200 with an empty body, as Trove)', {
    body: PatchConfigurationRequest,
  }),
  route('PUT', c, 'configurations', 'Replace values', { body: PutConfigurationRequest, status: 202 }),
  route('DELETE', c, 'configurations', 'Delete a configuration group', { status: 202 }),
  route('GET', `${c}/instances`, 'configurations', 'Instances using a group', {
    response: ConfigurationInstancesResponse,
  }),

  route('GET', `${p}/modules`, 'modules', 'List modules (`datastore`: a name, an id or all)', {
    response: ModulesResponse,
  }),
  route('POST', `${p}/modules`, 'modules', 'Create a module', {
    body: CreateModuleRequest,
    response: ModuleResponse,
  }),
  route('GET', md, 'modules', 'Show a module', { response: ModuleResponse }),
  route('PUT', md, 'modules', 'Update a module', { body: UpdateModuleRequest, response: ModuleResponse }),
  route('DELETE', md, 'modules', 'Delete a module (200 with an empty body, as Trove)'),
  route('GET', `${md}/instances`, 'modules', 'Instances that have the module (`count_only=true`: per md5)', {
    response: ModuleInstancesResponse,
  }),
  route('PUT', `${md}/instances`, 'modules', 'Reapply the module where applied (202, empty)', {
    body: ReapplyModuleRequest,
    status: 202,
  }),
  route('GET', `${i}/modules`, 'modules', 'Modules the guest has applied', {
    response: GuestModulesResponse,
  }),
  route('POST', `${i}/modules`, 'modules', 'Apply modules to an instance', {
    body: ApplyModulesRequest,
    response: GuestModulesResponse,
  }),
  route('DELETE', `${i}/modules/{module_id}`, 'modules', 'Remove a module from an instance (200, empty)'),

  route('GET', `${p}/datastores`, 'datastores', 'List datastores', { response: DatastoresResponse }),
  route('GET', `${p}/datastores/{datastore_id}`, 'datastores', 'Show a datastore', {
    response: DatastoreResponse,
  }),
  route('GET', dv, 'datastores', "A datastore's versions", { response: DatastoreVersionsResponse }),
  route('GET', `${dv}/{version_id}`, 'datastores', 'Show a datastore version', {
    response: DatastoreVersionResponse,
  }),
  route('GET', `${dv}/{version_id}/flavors`, 'datastores', 'Flavors for a datastore version', {
    response: FlavorsResponse,
  }),
  route('GET', `${dv}/{version_id}/volume-types`, 'datastores', 'Volume types for a datastore version', {
    response: VolumeTypesResponse,
  }),
  route('GET', `${dv}/{version_id}/parameters`, 'datastores', 'Configuration parameters of a version', {
    response: ParametersResponse,
  }),
  route('GET', `${dv}/{version_id}/parameters/{name}`, 'datastores', 'One configuration parameter', {
    response: ParameterView,
  }),
  route('GET', v, 'datastores', 'Show a datastore version by id', { response: DatastoreVersionResponse }),
  route('GET', `${v}/parameters`, 'datastores', 'Parameters of a version by id', {
    response: ParametersResponse,
  }),
  route('GET', `${v}/parameters/{name}`, 'datastores', 'One parameter by id', { response: ParameterView }),
  route('GET', `${p}/flavors`, 'flavors', 'List flavors', { response: FlavorsResponse }),
  route('GET', `${p}/flavors/{flavor_id}`, 'flavors', 'Show a flavor', { response: FlavorResponse }),

  route('GET', `${p}/mgmt/datastore-versions`, 'management', 'List datastore versions (admin)', {
    response: MgmtVersionsResponse,
  }),
  route('POST', `${p}/mgmt/datastore-versions`, 'management', 'Register a datastore version (admin)', {
    body: CreateDatastoreVersionRequest,
    status: 202,
  }),
  route('GET', mv, 'management', 'Show a datastore version (admin)', { response: MgmtVersionResponse }),
  route('PATCH', mv, 'management', 'Update a datastore version (admin)', {
    body: UpdateDatastoreVersionRequest,
    status: 202,
  }),
  route('DELETE', mv, 'management', 'Delete a datastore version no instance, backup or group uses (admin)', {
    status: 202,
  }),
  route(
    'DELETE',
    `${p}/datastores/{datastore_id}`,
    'management',
    'Delete a datastore with no versions (admin)',
    {
      status: 202,
    },
  ),
  route('POST', `${p}/mgmt/flavors`, 'management', 'Create a flavor (admin)', {
    body: CreateFlavorRequest,
    status: 202,
    response: FlavorResponse,
  }),
  route('DELETE', `${p}/mgmt/flavors/{flavor_id}`, 'management', 'Delete a flavor (admin)', { status: 202 }),
  route('GET', `${p}/mgmt/instances`, 'management', "Every project's instances (admin)", {
    response: MgmtInstancesResponse,
  }),
  route('GET', `${p}/mgmt/instances/{instance_id}`, 'management', 'Show any instance (admin)', {
    response: MgmtInstanceResponse,
  }),
  route(
    'POST',
    `${p}/mgmt/instances/{instance_id}/action`,
    'management',
    'Stop, reboot, rebuild or reset (admin)',
    {
      body: MgmtActionRequest,
      status: 202,
    },
  ),
  route('GET', `${p}/mgmt/instances/{instance_id}/root`, 'management', "An instance's root history (admin)", {
    response: RootHistoryResponse,
  }),
  route('GET', `${p}/mgmt/clusters`, 'management', "Every project's clusters (admin)", {
    response: MgmtClustersResponse,
  }),
  route('GET', `${p}/mgmt/clusters/{cluster_id}`, 'management', 'Show any cluster (admin)', {
    response: MgmtClusterResponse,
  }),
  route('POST', `${p}/mgmt/clusters/{cluster_id}/action`, 'management', "Reset a cluster's task (admin)", {
    body: MgmtClusterActionRequest,
    status: 202,
  }),
  route('GET', `${p}/mgmt/quotas/{target_project_id}`, 'management', "A project's quotas", {
    response: QuotasResponse,
  }),
  route('PUT', `${p}/mgmt/quotas/{target_project_id}`, 'management', "Set a project's quotas (admin)", {
    body: UpdateQuotasRequest,
    response: UpdatedQuotasResponse,
  }),
];
