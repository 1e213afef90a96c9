import { deliverAnswer, forgetWaitingTask, registerWaitingTask } from '../conductor/tasks.ts';
import { unwrapKey } from '../guest/keys.ts';
import { beginOrder, operationIdOf } from '../guest/queues.ts';
import { encryptFor } from '../guest/sealed.ts';
import type { InstanceItem } from '../instances/model.ts';

/**
 * Sends `method` to `target`'s guest for a workflow step that waits for the answer (task token).
 * `secrets` travel sealed with the target's own key. A retried step sends the same operation id
 * (the guest runs it once) and takes over an answer that came back between two attempts.
 */
export async function orderAndWait(
  target: InstanceItem,
  method: string,
  args: Record<string, unknown>,
  step: { task_token: string; execution_id?: string; secrets?: Record<string, unknown>; tag?: string },
): Promise<{ operation_id: string }> {
  // Steps that send the same method to several members name each order apart.
  const operationId = operationIdOf(
    `${method}${step.tag ? `:${step.tag}` : ''}`,
    step.execution_id,
    step.task_token,
  );
  // The order's record and its queue's URL are asked for while the step registers (queues.ts).
  const order = beginOrder(target.id, method, step.task_token, operationId);
  const waiting = await registerWaitingTask(
    target.project_id,
    target.id,
    operationId,
    step.task_token,
    method,
  );
  if (!waiting) throw new Error(`instance ${target.id} is gone`);
  if (waiting.answer) {
    await deliverAnswer(step.task_token, method, waiting.answer);
    await forgetWaitingTask(target.project_id, target.id, operationId, step.task_token);
    return { operation_id: operationId };
  }
  const key = await unwrapKey(target.wrapped_key);
  const sealed = step.secrets ? { sealed: encryptFor(key, step.secrets) } : {};
  await order.send(key, { ...args, ...sealed });
  return { operation_id: operationId };
}
