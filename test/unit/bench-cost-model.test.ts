import { describe, expect, it } from 'vitest';
import { AS_BUILT, alternatives, type RestCounts, restCost, restTotal } from '../../bench/cost-model.ts';
import { HOURS_PER_MONTH, PRICES } from '../../bench/prices.ts';

// The cost bench's model (`npm run bench -- cost`): the figures it prints for designs that are
// priced but not run must follow from the counts and the price table, part by part.

const counts: RestCounts = {
  writeUnitsPerHeartbeat: 1.2,
  conductorMsPerHeartbeat: 26,
  readUnitsPerMonth: 27_000,
  doorbellMonth: 0.0237,
  restPollsMonth: 0.0035,
  keyCacheMonth: 0.0022,
  functionGb: 0.25,
  logBytesPerInvocation: 350,
};
const beatsPerMonth = 60 * HOURS_PER_MONTH;

describe('the cost model of an instance at rest', () => {
  it('prices the design as built from its parts: a send and a tenth of a batch per heartbeat, its writes', () => {
    const cost = restCost(counts, AS_BUILT);
    const batch = 2 * PRICES.sqsRequest + PRICES.lambdaRequest + (350 / 1e9) * PRICES.logsGb;
    expect(cost['heartbeats into the conductor']).toBeCloseTo(
      beatsPerMonth * (PRICES.sqsRequest + batch / 10),
      10,
    );
    expect(cost['table writes']).toBeCloseTo(beatsPerMonth * 1.2 * PRICES.dynamoWriteUnit, 10);
    expect(cost['doorbell at rest']).toBe(0.0237);
    // By hand: 43,800 heartbeats x ($0.40 + ($0.80 + $0.20 + $0.175 of logs) / 10 per million) =
    // $0.02267; 26 ms x 0.25 GB each $0.00380; 1.2 units each $0.03285; 27,000 read units $0.00338;
    // with the doorbell and the key cache, $0.08859.
    expect(restTotal(counts, AS_BUILT)).toBeCloseTo(0.08859, 4);
  });

  it('halves the heartbeat part when the interval doubles, and leaves the rest alone', () => {
    const at60 = restCost(counts, AS_BUILT);
    const at120 = restCost(counts, { ...AS_BUILT, heartbeatSeconds: 120 });
    expect(at120['table writes']).toBeCloseTo((at60['table writes'] ?? 0) / 2, 10);
    expect(at120['heartbeats into the conductor']).toBeCloseTo(
      (at60['heartbeats into the conductor'] ?? 0) / 2,
      10,
    );
    expect(at120['doorbell at rest']).toBe(at60['doorbell at rest']);
    expect(at120['key cache']).toBe(at60['key cache']);
  });

  it('prices provisioned writes as capacity paid for at 70% use, cheaper than on-demand for a steady load', () => {
    const provisioned = restCost(counts, { ...AS_BUILT, tables: 'provisioned' });
    expect(provisioned['table writes']).toBeCloseTo(
      (beatsPerMonth * 1.2 * PRICES.dynamoWcuHour) / 3600 / 0.7,
      10,
    );
    expect(provisioned['table writes']).toBeLessThan(restCost(counts, AS_BUILT)['table writes'] ?? 0);
  });

  it("shares a Kinesis shard's hours across the fleet: a small fleet pays more per instance", () => {
    const kinesis = { ...AS_BUILT, heartbeats: 'kinesis' as const, batch: 100 };
    const big = restCost(counts, kinesis)['heartbeats into the conductor'] ?? 0;
    const small = restCost(counts, { ...kinesis, fleet: 1000 })['heartbeats into the conductor'] ?? 0;
    // One shard either way (500 and 17 heartbeats a second): its hours over 30,000 or over 1,000,
    // and at 1,000 a batch holds the 17 records a second brings, not 100.
    const invocation = PRICES.lambdaRequest + (350 / 1e9) * PRICES.logsGb;
    expect(small - big).toBeCloseTo(
      PRICES.kinesisShardHour * HOURS_PER_MONTH * (1 / 1000 - 1 / 30_000) +
        beatsPerMonth * invocation * (1 / (1000 / 60) - 1 / 100),
      10,
    );
  });

  it('adds a shard for every 1,000 heartbeats a second', () => {
    const kinesis = { ...AS_BUILT, heartbeats: 'kinesis' as const, batch: 100 };
    const oneShard = restCost(counts, { ...kinesis, fleet: 60_000 })['heartbeats into the conductor'] ?? 0;
    const twoShards = restCost(counts, { ...kinesis, fleet: 60_001 })['heartbeats into the conductor'] ?? 0;
    expect(twoShards - oneShard).toBeCloseTo(
      (PRICES.kinesisShardHour * HOURS_PER_MONTH * 2) / 60_001 -
        (PRICES.kinesisShardHour * HOURS_PER_MONTH) / 60_000,
      8,
    );
  });

  it('keeps the rest polls on an MQTT doorbell and adds only connection-minutes', () => {
    const mqtt = restCost(counts, { ...AS_BUILT, doorbell: 'mqtt' });
    expect(mqtt['doorbell at rest']).toBeCloseTo(
      0.0035 + 60 * HOURS_PER_MONTH * PRICES.iotConnectionMinute,
      10,
    );
  });

  it('lists every combination of the three swaps once, the design as built first', () => {
    const all = alternatives();
    expect(all).toHaveLength(8);
    expect(all[0]?.design).toEqual(AS_BUILT);
    expect(new Set(all.map((a) => a.label)).size).toBe(8);
  });
});
