// How a guest's metrics samples are grouped for keeping (lib/metrics/samples.ts): one sample per
// report interval, `samplesPerWrite` intervals to a bucket, a bucket's samples in one item. Here
// with no imports: the guest agent groups its samples by the same arithmetic.

export interface MetricsBuckets {
  /** Seconds between samples: the heartbeat interval (Trove's report_interval). */
  intervalSeconds: number;
  /** Samples per write: a bucket is this many intervals. */
  samplesPerWrite: number;
}

export const bucketSeconds = (b: MetricsBuckets) =>
  Math.max(1, b.intervalSeconds) * Math.max(1, Math.floor(b.samplesPerWrite));

/** The bucket a sample taken at `t` (Unix seconds) belongs to. */
export const bucketOf = (t: number, b: MetricsBuckets) => Math.floor(t / bucketSeconds(b));

/** The report interval a sample taken at `t` falls in: a guest keeps one sample per interval. */
export const intervalOf = (t: number, b: MetricsBuckets) => Math.floor(t / Math.max(1, b.intervalSeconds));
