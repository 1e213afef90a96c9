import type { Context } from 'aws-lambda';
import { answerCustomResource, isCustomResourceEvent } from '#lib/catalog/custom-resource';
import { type SeedCounts, seedCatalog } from '#lib/catalog/seed';

/**
 * Seeds the built-in catalog. CloudFormation calls it as the `Custom::CatalogSeed` resource on
 * each stack create and update; the local cloud and operators invoke it directly and get the
 * counts back. Either way it only adds what is missing.
 */
export async function handler(event: unknown, context: Context): Promise<SeedCounts | undefined> {
  if (isCustomResourceEvent(event)) {
    await answerCustomResource(event, context, 'troveless-catalog-seed', seedCatalog);
    return undefined;
  }
  return seedCatalog();
}
