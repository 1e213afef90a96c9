import type { Context } from 'aws-lambda';
import { answerCustomResource, isCustomResourceEvent } from '#lib/catalog/custom-resource';
import { bootstrapAdmin, ssmSink } from '#lib/identity/bootstrap';

/**
 * The `Custom::IdentityBootstrap` resource (serverless/identity.yml): creates the first admin
 * when none exists, its password going only to the SSM SecureString named by
 * TROVELESS_ADMIN_PASSWORD_PARAMETER.
 */
export async function handler(event: unknown, context: Context) {
  const parameter = process.env.TROVELESS_ADMIN_PASSWORD_PARAMETER ?? '';
  const work = async () => {
    if (!parameter) throw new Error('TROVELESS_ADMIN_PASSWORD_PARAMETER is not set');
    return bootstrapAdmin(ssmSink(parameter));
  };
  if (isCustomResourceEvent(event)) {
    await answerCustomResource(event, context, 'troveless-identity-bootstrap', work);
    return undefined;
  }
  return work();
}
