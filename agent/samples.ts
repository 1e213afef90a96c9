import { bucketOf, intervalOf, type MetricsBuckets } from '../lib/metrics/buckets.ts';
import type { Sample } from '../lib/metrics/samples.ts';

/**
 * The guest's metrics samples on their way to the conductor (lib/metrics/samples.ts): one per
 * report interval (the first heartbeat of an interval gives it; a set with automatic failover
 * heartbeats every second), sent together once their bucket is full or a sample of the next
 * bucket comes. At most one bucket's samples are held; a batch whose heartbeat is lost is lost.
 */
export class SampleBatches {
  #batch: Sample[] = [];
  /** The interval of the last sample taken, sent or not. */
  #lastInterval: number | undefined;

  constructor(private readonly buckets: MetricsBuckets) {}

  /** Takes `sample`; returns the samples to send with this heartbeat, if any. */
  add(sample: Sample): Sample[] | undefined {
    const interval = intervalOf(sample.t, this.buckets);
    if (interval === this.#lastInterval) return undefined;
    this.#lastInterval = interval;
    const last = this.#batch.at(-1);
    let due: Sample[] | undefined;
    if (last && bucketOf(last.t, this.buckets) !== bucketOf(sample.t, this.buckets)) {
      due = this.#batch;
      this.#batch = [];
    }
    this.#batch.push(sample);
    if (!due && this.#batch.length >= this.buckets.samplesPerWrite) {
      due = this.#batch;
      this.#batch = [];
    }
    return due;
  }
}
