import { describe, expect, it } from 'vitest';
import { allInOrder } from '../../lib/settled.ts';

const later = <T>(ms: number, value: T) => new Promise<T>((ok) => setTimeout(() => ok(value), ms));
const failLater = (ms: number, message: string) =>
  new Promise<never>((_, fail) => setTimeout(() => fail(new Error(message)), ms));

describe('allInOrder', () => {
  it('answers every value in the order given', async () => {
    expect(await allInOrder([later(5, 'flavor'), later(1, 7)] as const)).toEqual(['flavor', 7]);
  });

  it('throws the first failure in the given order, not the first to come', async () => {
    // The second check fails first; the request still gets the first check's error.
    await expect(
      allInOrder([failLater(10, 'flavor not found'), failLater(1, 'version not found')]),
    ).rejects.toThrow('flavor not found');
  });

  it('waits for every check before it answers, so none is left running', async () => {
    let done = false;
    const slow = later(10, 'x').then((v) => {
      done = true;
      return v;
    });
    await expect(allInOrder([Promise.reject(new Error('bad')), slow])).rejects.toThrow('bad');
    expect(done).toBe(true);
  });
});
