/**
 * The updater contract: a server-side update function (the paper's server UDF) that folds an
 * aggregated pushed gradient into a table's values, with optional per-value state arrays.
 */

/** A configured update function; one instance per table. */
export interface Updater {
  readonly name: string;
  /** Number of per-value state arrays kept beside the values (sum/sgd 0, adagrad 1, ftrl 2, adam 2). */
  readonly stateSlots: number;
  /** Initial value of each state slot (e.g. adagrad accumulator = initialAccumulator). */
  readonly stateInit: readonly number[];
  /**
   * Applies the aggregated pushed gradient `grad` to `values` in place (all of length n), updating
   * `state` (stateSlots arrays, each length n). `step` is the 1-based count of pushes this table has
   * applied (for Adam's bias correction). Must not allocate per element; must handle any n >= 0,
   * and arrays that are subarrays with any 4-byte-aligned byteOffset.
   */
  apply(values: Float32Array, state: readonly Float32Array[], grad: Float32Array, step: number): void;
}

/** Builds an updater from user parameters; throws TS_ERR_INVALID_ARGUMENT on bad parameters. */
export type UpdaterFactory = (params: Record<string, unknown>) => Updater;
