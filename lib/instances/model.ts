import { config } from '../config.ts';
import { dynamoose, tableOptions } from '../db.ts';

// One item per instance, keyed by project first so that no query can cross projects.
const schema = new dynamoose.Schema(
  {
    project_id: { type: String, hashKey: true },
    id: { type: String, rangeKey: true },
    name: { type: String, required: true },
    created: { type: String, required: true },
    updated: { type: String, required: true },
  },
  { saveUnknown: false },
);

export const InstanceModel = dynamoose.model('Instance', schema, {
  tableName: config.instancesTable,
  ...tableOptions,
});

export interface InstanceItem {
  project_id: string;
  id: string;
  name: string;
  created: string;
  updated: string;
}
