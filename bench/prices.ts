// Published on-demand prices of one region, for the cost bench (`npm run bench -- cost`).
//
// Region: us-east-1 (N. Virginia). Read on 2026-12-04 from what the author knows of the public
// price pages listed below, as they stood after DynamoDB's on-demand price cut of 2024-11-01:
// this machine has no internet, so they were NOT re-read online. Check them against the pages
// before quoting a figure; every figure the bench prints is linear in them.
// Free tiers are left out (a deployment of thousands of guests is past them).

export const PRICES = {
  region: 'us-east-1',
  read: '2026-12-04, from memory of the public price pages (not re-read online: no internet here)',
  sources: [
    'https://aws.amazon.com/sqs/pricing/',
    'https://aws.amazon.com/lambda/pricing/',
    'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    'https://aws.amazon.com/step-functions/pricing/',
    'https://aws.amazon.com/s3/pricing/',
    'https://aws.amazon.com/kms/pricing/',
    'https://aws.amazon.com/api-gateway/pricing/',
    'https://aws.amazon.com/cloudwatch/pricing/',
    // Priced for the designs the bench models but which are not built (bench/cost-model.ts):
    'https://aws.amazon.com/dynamodb/pricing/provisioned/',
    'https://aws.amazon.com/kinesis/data-streams/pricing/',
    'https://aws.amazon.com/iot-core/pricing/',
  ],
  /** SQS standard queue, per request (each 64 KB of payload is one request). */
  sqsRequest: 0.4 / 1e6,
  /** Lambda, per invocation. */
  lambdaRequest: 0.2 / 1e6,
  /** Lambda on arm64 (serverless.yml's architecture), per GB-second of billed duration. */
  lambdaGbSecond: 0.0000133334,
  /** DynamoDB on-demand, per write request unit (1 KB) and read request unit (4 KB, strong). */
  dynamoWriteUnit: 0.625 / 1e6,
  dynamoReadUnit: 0.125 / 1e6,
  /** DynamoDB provisioned capacity (modelled only), per write and per read capacity unit-hour. */
  dynamoWcuHour: 0.00065,
  dynamoRcuHour: 0.00013,
  /** Kinesis Data Streams, provisioned mode (modelled only): per shard-hour, per 25 KB PUT payload unit. */
  kinesisShardHour: 0.015,
  kinesisPutUnit: 0.014 / 1e6,
  /** AWS IoT Core (modelled only), per connection-minute; MQTT PINGREQ and PINGRESP are not metered. */
  iotConnectionMinute: 0.08 / 1e6,
  /** Step Functions standard workflows, per state transition. */
  sfnTransition: 0.025 / 1000,
  /** S3 Standard: PUT, COPY, POST, LIST requests; GET and other requests; storage per GB-month. */
  s3Tier1Request: 0.005 / 1000,
  s3Tier2Request: 0.0004 / 1000,
  s3GbMonth: 0.023,
  /** KMS: per request (Encrypt, Decrypt), and per customer managed key per month. */
  kmsRequest: 0.03 / 10_000,
  kmsKeyMonth: 1,
  /** API Gateway HTTP API, per request (first 300 million a month). */
  httpApiRequest: 1 / 1e6,
  /**
   * API Gateway WebSocket API (the guests' doorbell): per message (32 KB each, both ways; first
   * billion a month), and per connection-minute.
   */
  websocketMessage: 1 / 1e6,
  websocketConnectionMinute: 0.25 / 1e6,
  /** CloudWatch Logs, per GB ingested (every Lambda invocation writes START, END and REPORT). */
  logsGb: 0.5,
} as const;

/** Hours in the month the bench prices (730 = 8760 / 12). */
export const HOURS_PER_MONTH = 730;
