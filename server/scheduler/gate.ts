/**
 * The consistency gate (docs/architecture.md §5, the paper's bounded delay): a task of iteration i may
 * start only when iteration i − τ − 1 and every one before it are complete. τ = 0 is BSP (one
 * iteration at a time), τ = null is ASP (no gate). Requiring the whole prefix, not just
 * iteration i − τ − 1, is the same under a fixed τ and stays safe when τ shrinks while the job
 * runs. Completions are reported in iteration order even when a later iteration finishes first.
 */
export class ConsistencyGate {
  private readonly remaining: Uint32Array;
  private through = 0;

  constructor(
    readonly shards: number,
    readonly iterations: number,
    public tau: number | null,
  ) {
    this.remaining = new Uint32Array(iterations).fill(shards);
  }

  /** Iterations complete, counted from 0 (all of 0 … iterationsDone − 1 are complete). */
  get iterationsDone(): number {
    return this.through;
  }

  get complete(): boolean {
    return this.through === this.iterations;
  }

  /** Tasks of `iteration` done so far. */
  doneIn(iteration: number): number {
    return this.shards - this.remaining[iteration];
  }

  /** True when tasks of `iteration` may be leased now. */
  open(iteration: number): boolean {
    return this.tau === null || iteration - this.tau - 1 < this.through;
  }

  /** Records one task of `iteration` as done; returns the iterations this completed, in order. */
  taskDone(iteration: number): number[] {
    this.remaining[iteration]--;
    const out: number[] = [];
    while (this.through < this.iterations && this.remaining[this.through] === 0) out.push(this.through++);
    return out;
  }
}
