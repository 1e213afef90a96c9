// The cost bench's model of an instance at rest (`npm run bench -- cost`): what the run counted
// per heartbeat, per scan and per key refresh, priced for a design. The design as built is
// priced at other heartbeat intervals and batch sizes ("what each choice costs"), and with the
// three parts that make most of its price swapped for what AWS offers in their place ("what
// would meet the goal"). Those alternatives are MODELLED, not run: DynamoDB Local has no capacity
// modes, and neither Kinesis nor IoT Core runs in the local cloud. None of them is built.
import { HOURS_PER_MONTH, PRICES } from './prices.ts';

/** What the run measured, per unit of work at rest. */
export interface RestCounts {
  /** Write units per heartbeat: the instance item, and a share of the metrics batches. */
  writeUnitsPerHeartbeat: number;
  /** Billed conductor milliseconds per heartbeat, measured with a batch of one (an upper bound in batches). */
  conductorMsPerHeartbeat: number;
  /** Read units a month: the scheduled scans. */
  readUnitsPerMonth: number;
  /** The guest's doorbell at rest as built (API Gateway WebSocket), a month; its rest polls included. */
  doorbellMonth: number;
  /** Of which the rest polls of the guest's queue, which any doorbell keeps for a lost ring. */
  restPollsMonth: number;
  /** KMS Decrypts of the conductor's key cache, a month. */
  keyCacheMonth: number;
  functionGb: number;
  logBytesPerInvocation: number;
}

export interface Design {
  heartbeatSeconds: number;
  /** Heartbeats into the conductor: the SQS queue it takes batches from, or a Kinesis stream. */
  heartbeats: 'sqs' | 'kinesis';
  /** Records per conductor invocation (Lambda's event source). */
  batch: number;
  /** The tables' capacity mode. */
  tables: 'on-demand' | 'provisioned';
  /** How a guest at rest hears of an order. */
  doorbell: 'websocket' | 'mqtt';
  /** Instances in the deployment: they share a Kinesis stream's shard-hours. */
  fleet: number;
}

/** As built, in the fleet ("30,000 guests for a few dollars"). */
export const AS_BUILT: Design = {
  heartbeatSeconds: 60,
  heartbeats: 'sqs',
  batch: 10,
  tables: 'on-demand',
  doorbell: 'websocket',
  fleet: 30_000,
};

/**
 * Provisioned capacity with Application Auto Scaling keeps consumed capacity near its target
 * (70% is its default): a steady load of heartbeats pays for a unit a second over 0.7 of it.
 */
const TARGET_UTILIZATION = 0.7;
/** A Kinesis shard takes 1,000 records a second (and 1 MB: a heartbeat is under 1 KB). */
const SHARD_RECORDS_PER_SECOND = 1000;

const minutesPerMonth = 60 * HOURS_PER_MONTH;

/** One instance-month at rest under a design, by part. */
export function restCost(c: RestCounts, d: Design): Record<string, number> {
  const beats = (3600 / d.heartbeatSeconds) * HOURS_PER_MONTH;
  const invocation = PRICES.lambdaRequest + (c.logBytesPerInvocation / 1e9) * PRICES.logsGb;
  const fleetPerSecond = d.fleet / d.heartbeatSeconds;
  const shards = Math.ceil(fleetPerSecond / SHARD_RECORDS_PER_SECOND);
  const transport =
    d.heartbeats === 'sqs'
      ? // A send each; a batch is a receive, a delete and an invocation with its logs.
        beats * (PRICES.sqsRequest + (2 * PRICES.sqsRequest + invocation) / d.batch)
      : // A put each (a 25 KB payload unit); the stream's reads are free to Lambda; its shards
        // are the fleet's. Lambda reads each shard about once a second, so a batch holds at most
        // what the fleet sends a shard in a second (17 records at 1,000 guests, not 100).
        beats *
          (PRICES.kinesisPutUnit + invocation / Math.max(1, Math.min(d.batch, fleetPerSecond / shards))) +
        (PRICES.kinesisShardHour * HOURS_PER_MONTH * shards) / d.fleet;
  const writeUnit =
    d.tables === 'on-demand' ? PRICES.dynamoWriteUnit : PRICES.dynamoWcuHour / 3600 / TARGET_UTILIZATION;
  const readUnit =
    d.tables === 'on-demand' ? PRICES.dynamoReadUnit : PRICES.dynamoRcuHour / 3600 / TARGET_UTILIZATION;
  // IoT Core bills the connection's minutes; MQTT keep-alive pings (PINGREQ) are free.
  const doorbell =
    d.doorbell === 'websocket'
      ? c.doorbellMonth
      : c.restPollsMonth + minutesPerMonth * PRICES.iotConnectionMinute;
  return {
    'heartbeats into the conductor': transport,
    'conductor duration': beats * (c.conductorMsPerHeartbeat / 1000) * c.functionGb * PRICES.lambdaGbSecond,
    'table writes': beats * c.writeUnitsPerHeartbeat * writeUnit,
    'table reads (scans)': c.readUnitsPerMonth * readUnit,
    'doorbell at rest': doorbell,
    'key cache': c.keyCacheMonth,
  };
}

export const restTotal = (c: RestCounts, d: Design) =>
  Object.values(restCost(c, d)).reduce((a, b) => a + b, 0);

/** Every combination of the three swaps, from the design as built. */
export function alternatives(): { label: string; design: Design }[] {
  const out: { label: string; design: Design }[] = [];
  for (const tables of ['on-demand', 'provisioned'] as const)
    for (const heartbeats of ['sqs', 'kinesis'] as const)
      for (const doorbell of ['websocket', 'mqtt'] as const) {
        const changes = [
          tables === 'provisioned' ? 'provisioned tables' : '',
          heartbeats === 'kinesis' ? 'Kinesis heartbeats' : '',
          doorbell === 'mqtt' ? 'MQTT doorbell' : '',
        ].filter(Boolean);
        out.push({
          label: changes.length ? changes.join(' + ') : 'as built (SQS, on-demand, WebSocket)',
          // A stream's batches are as large as Lambda's default for one (100).
          design: { ...AS_BUILT, tables, heartbeats, doorbell, batch: heartbeats === 'kinesis' ? 100 : 10 },
        });
      }
  return out;
}
