/**
 * What a worker asks the gateway over HTTP (docs/workers.md): the job list, a job's description
 * and status, its cluster view (relay addresses, ICE servers) and its shards. A refusal is one
 * readable error: the path, the HTTP status and the gateway's error code and message.
 */
import { type ClusterInfo, parseClusterInfo } from '../shared/cluster.ts';
import { isErrorCode, TabshardError } from '../shared/errors.ts';
import type { JobInfo } from './bootstrap-types.ts';

export type Fetch = (url: string) => Promise<Response>;

export class GatewayApi {
  constructor(
    private readonly fetch: Fetch,
    /** `http(s)://host[:port]`, no trailing slash. */
    readonly base: string,
  ) {}

  /** The scheduler session's WebSocket address of `job`. */
  sessionUrl(job: number): string {
    return `${this.base.replace(/^http/, 'ws')}/api/jobs/${job}/session`;
  }

  /** The first job the gateway lists; TS_ERR_UNKNOWN_JOB when it runs none. */
  async firstJob(): Promise<number> {
    const { jobs } = (await this.json('/api/jobs')) as { jobs?: Array<{ job: number }> };
    if (!jobs?.length) throw new TabshardError('TS_ERR_UNKNOWN_JOB', `the gateway at ${this.base} runs no job`);
    return jobs[0].job;
  }

  async jobInfo(job: number): Promise<JobInfo> {
    const info = (await this.json(`/api/jobs/${job}`)) as JobInfo;
    if (!Number.isInteger(info.shards) || typeof info.version !== 'string')
      throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `/api/jobs/${job}: not a job description`);
    return info;
  }

  /** The job's status (the same route as its description, read again). */
  status(job: number): Promise<unknown> {
    return this.json(`/api/jobs/${job}`);
  }

  async cluster(job: number): Promise<ClusterInfo> {
    return parseClusterInfo(await this.json(`/api/jobs/${job}/cluster`));
  }

  async shard(job: number, index: number): Promise<Uint8Array> {
    const res = await this.get(`/api/jobs/${job}/shards/${index}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  private async json(path: string): Promise<unknown> {
    return (await this.get(path)).json();
  }

  private async get(path: string): Promise<Response> {
    const res = await this.fetch(`${this.base}${path}`);
    if (res.ok) return res;
    // The gateway's errors are `{code, message}` (server/gateway/app.ts).
    const body = (await res.json().catch(() => null)) as { code?: unknown } | null;
    const code = isErrorCode(body?.code)
      ? body.code
      : res.status >= 500
        ? 'TS_ERR_CONNECT_FAILED'
        : 'TS_ERR_INVALID_ARGUMENT';
    throw new TabshardError(code, `GET ${path}: HTTP ${res.status}`);
  }
}

/** This worker's share of the job's finished tasks, from the job's status. */
export function contributionOf(status: unknown, worker: number | undefined) {
  const s = status as { tasks: { done: number; total: number }; workers: Array<{ worker: number; tasksDone: number }> };
  const tasksDone = s.workers.find((w) => w.worker === worker)?.tasksDone ?? 0;
  return {
    tasksDone,
    jobTasksDone: s.tasks.done,
    jobTasks: s.tasks.total,
    share: s.tasks.done ? tasksDone / s.tasks.done : 0,
  };
}
