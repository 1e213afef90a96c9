import { dynamoose } from '../db.ts';
import { NotFound, TroveError } from '../errors.ts';
import { nextFlavorId } from './ids.ts';
import { FlavorModel, isConditionFailure, keyOf } from './model.ts';
import type { CreateFlavorRequest } from './schemas.ts';
import { loadFlavors } from './store.ts';
import type { Flavor } from './types.ts';

// Flavors live in the catalog because there is no Nova: admins add and remove them here, with
// Nova's rules (unique id and name, 409 on a clash). Instances keep their own copy of the sizes,
// so removing a flavor in use is allowed, as in Nova.

export async function createFlavor(req: CreateFlavorRequest): Promise<Flavor> {
  const flavors = await loadFlavors();
  if (flavors.some((f) => f.name === req.name)) {
    throw new TroveError(409, `Flavor with name ${req.name} already exists.`);
  }
  const flavor: Flavor = {
    id: req.id ?? nextFlavorId(flavors.map((f) => f.id)),
    name: req.name,
    ram: req.ram,
    vcpus: req.vcpus,
    disk: req.disk,
    ephemeral: req.ephemeral,
  };
  try {
    await FlavorModel.create({ kind: 'flavor', ...flavor }, { overwrite: false });
  } catch (err) {
    if (isConditionFailure(err)) throw new TroveError(409, `Flavor with ID ${flavor.id} already exists.`);
    throw err;
  }
  return flavor;
}

export async function deleteFlavor(id: string): Promise<void> {
  try {
    await FlavorModel.delete(keyOf('flavor', id), { condition: new dynamoose.Condition('id').exists() });
  } catch (err) {
    if (isConditionFailure(err)) throw new NotFound(`Resource ${id} cannot be found.`);
    throw err;
  }
}
