/**
 * What the two application registries (workers.ts, jobs.ts) share: names checked and unique,
 * sorted listing, lookup. Each registry adds its own check of an entry. Runs in a tab and in Node.
 */
import { TabshardError } from '../shared/errors.ts';

/** Application names: a lower-case letter, then up to 31 lower-case letters, digits or '-'. */
export const APP_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

/** An application error (TS_ERR_INVALID_ARGUMENT, "app: …"). */
export const appError = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', `app: ${why}`);

export class AppRegistry<T extends { readonly name: string }> {
  private readonly apps = new Map<string, T>();

  /** `flaw(app)`: why `app` cannot be registered (after its name was checked), or null. */
  constructor(private readonly flaw: (app: T) => string | null) {}

  /** Registers `app`; TS_ERR_INVALID_ARGUMENT if its name is invalid or taken, or it has a flaw. */
  add(app: T): void {
    if (typeof app?.name !== 'string' || !APP_NAME_RE.test(app.name))
      throw appError(`invalid name ${JSON.stringify(app?.name)}`);
    if (this.apps.has(app.name)) throw appError(`"${app.name}" is already registered`);
    const why = this.flaw(app);
    if (why !== null) throw appError(`"${app.name}" ${why}`);
    this.apps.set(app.name, app);
  }

  /** Registered names, sorted. */
  names(): string[] {
    return [...this.apps.keys()].sort();
  }

  get(name: string): T | undefined {
    return this.apps.get(name);
  }
}
