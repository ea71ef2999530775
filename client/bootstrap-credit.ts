/**
 * This worker's credit (docs/workers.md, "One bootstrap"): its share of the job's finished tasks,
 * read from the job's status (`GET /api/jobs/:job`) at most every CREDIT_MIN_MS — after a task is
 * done, and every CREDIT_EVERY_MS while the run lasts — on the platform's clock.
 */

import type { Clock, TimerId } from '../shared/clock-source.ts';
import type { BootStatus } from './bootstrap-types.ts';
import { contributionOf, type GatewayApi } from './gateway-api.ts';

export const CREDIT_MIN_MS = 2000;
export const CREDIT_EVERY_MS = 5000;

export class Credit {
  private timer: TimerId | null = null;
  private reading: Promise<void> | null = null;
  private readAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly api: GatewayApi,
    private readonly clock: Clock,
    private readonly job: number,
    private readonly status: BootStatus,
    private readonly changed: () => void,
  ) {}

  /** Reads it every CREDIT_EVERY_MS from now on (until `close`). */
  start(): void {
    const tick = () => {
      this.timer = this.clock.setTimeout(tick, CREDIT_EVERY_MS);
      this.soon();
    };
    this.timer = this.clock.setTimeout(tick, CREDIT_EVERY_MS);
  }

  /** Reads it unless it was read less than CREDIT_MIN_MS ago or is being read; failures are ignored. */
  soon(): void {
    const now = this.clock.now();
    if (this.reading || now - this.readAt < CREDIT_MIN_MS) return;
    this.readAt = now;
    this.reading = this.read()
      .catch(() => {})
      .finally(() => {
        this.reading = null;
      });
  }

  /** Reads it now (the run's last word on it). */
  async read(): Promise<void> {
    this.status.contribution = contributionOf(await this.api.status(this.job), this.status.worker);
    this.changed();
  }

  /** No timer after this; resolves once a read in flight is over. */
  async close(): Promise<void> {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.reading;
  }
}
