import { z } from 'zod';
import { Link } from '../openapi/schemas.ts';
import { idRef, safeText } from '../validation.ts';

// Request bodies of the configuration routes (TROVE_API.md §6).
// Keys are parameter names (at most 255, as path parameter names are).
const values = z.record(safeText(255), z.unknown());

export const CreateConfigurationRequest = z.object({
  configuration: z.object({
    name: safeText(255).min(1),
    values,
    description: safeText(255).optional(),
    datastore: z
      .object({
        type: idRef().optional(),
        version: idRef().optional(),
        version_number: idRef().optional(),
      })
      .optional(),
  }),
});

export const PatchConfigurationRequest = z.object({ configuration: z.object({ values }) });

export const PutConfigurationRequest = z.object({
  configuration: z.object({
    values,
    name: safeText(255).min(1).optional(),
    description: safeText(255).optional(),
  }),
});

// Answers, as the OpenAPI description states them (lib/openapi), and the types views.ts builds.
const links = z.array(Link);

/** Trove's ConfigurationView (list items): no values, no instance count. */
export const ConfigurationView = z.looseObject({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  created: z.string(),
  updated: z.string(),
  datastore_name: z.string(),
  datastore_version_id: z.string(),
  datastore_version_name: z.string(),
});
export type ConfigurationView = z.infer<typeof ConfigurationView>;

/** Trove's DetailedConfigurationView: values (password-like ones masked) and the instance count. */
export const ConfigurationDetailView = ConfigurationView.extend({
  values: z.record(z.string(), z.unknown()),
  instance_count: z.int(),
  datastore_version_number: z.string(),
});
export type ConfigurationDetailView = z.infer<typeof ConfigurationDetailView>;

export const ConfigurationsResponse = z.object({
  configurations: z.array(ConfigurationView),
  links: links.optional(),
});
export const ConfigurationResponse = z.object({ configuration: ConfigurationDetailView });
export const ConfigurationInstancesResponse = z.object({
  instances: z.array(z.looseObject({ id: z.string(), name: z.string() })),
  links: links.optional(),
});

/**
 * A configuration parameter's rule. `min` and `max` are left out when unset or 0, as Trove; they
 * may pass 2^53 (MariaDB's bulk_insert_buffer_size), so they are numbers, not safe integers.
 */
export const ParameterView = z.looseObject({
  name: z.string(),
  restart_required: z.boolean(),
  type: z.string(),
  min: z.number().optional(),
  max: z.number().optional(),
  datastore_version_id: z.string(),
});
export type ParameterView = z.infer<typeof ParameterView>;
export const ParametersResponse = z.object({ 'configuration-parameters': z.array(ParameterView) });
