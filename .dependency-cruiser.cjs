/**
 * Import rules of docs/architecture.md §11, checked by `npm run lint`:
 * shared ← client ← web; shared ← server; e2e only through HTTP and the browser; no cycles;
 * benchmarks (bench/) are never imported by product code.
 * apps/ (one folder per application): its job side (jobs.ts, job-contract.ts, <app>/job.ts,
 * <app>/train.ts) runs beside the server; the rest, its worker side and model math, runs in tabs.
 */
const APP_JOB_SIDE = '^apps/((jobs|job-contract)\\.ts|[^/]+/(job|train)\\.ts)$';
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'product-never-imports-bench',
      comment: 'benchmarks import the product, never the other way round (tests of product code included)',
      severity: 'error',
      from: { path: '^(apps|server|client|shared|web)/' },
      to: { path: '^bench/' },
    },
    {
      name: 'shared-imports-nothing-of-ours',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(apps|server|client|web|e2e|bench|scripts)/' },
    },
    // Integration tests (*.test.ts, and the testkit.ts files only tests import) may put a server and
    // a client together; production code may not.
    {
      name: 'server-imports-only-shared',
      severity: 'error',
      from: { path: '^server/', pathNot: '(\\.test|testkit)\\.ts$' },
      to: { path: '^(client|web|e2e|bench)/' },
    },
    {
      name: 'client-imports-only-shared',
      severity: 'error',
      from: { path: '^client/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(server|web|e2e|bench)/' },
    },
    {
      name: 'testkits-for-tests-only',
      comment: 'test support: imported by tests, other testkits and benchmarks, never by product code',
      severity: 'error',
      from: { pathNot: '((\\.test|testkit)\\.ts$|^bench/)' },
      to: { path: 'testkit\\.ts$' },
    },
    {
      name: 'web-imports-client-and-shared',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^(server|e2e|bench)/' },
    },
    // e2e/oracle.ts is not part of the harness: a test runs it as a child process, a client of the cluster.
    // e2e/lab/ is not either: the lab page's code, which the harness bundles by path and serves to its tabs.
    {
      name: 'e2e-uses-http-and-browser-only',
      severity: 'error',
      from: { path: '^e2e/', pathNot: '^e2e/(oracle\\.ts$|lab/)' },
      to: { path: '^(apps|server|client|shared|web|bench|e2e/lab)/' },
    },
    {
      name: 'e2e-lab-is-a-browser-client',
      comment: 'the lab page runs in a tab: the worker library and shared code, no server code, no Node module',
      severity: 'error',
      from: { path: '^e2e/lab/' },
      to: { path: '^(apps|server|web|bench|scripts)/|^e2e/(?!lab/)' },
    },
    {
      name: 'e2e-lab-has-no-io',
      severity: 'error',
      from: { path: '^e2e/lab/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'app-worker-side-runs-in-tabs',
      comment: "an application's worker side and model math run in a tab: no server code, no I/O modules",
      severity: 'error',
      from: { path: '^apps/', pathNot: [APP_JOB_SIDE, '\\.test\\.ts$'] },
      to: { path: '^(server|web|e2e|bench|scripts)/' },
    },
    {
      name: 'app-worker-side-has-no-io',
      severity: 'error',
      from: { path: '^apps/', pathNot: [APP_JOB_SIDE, '\\.test\\.ts$'] },
      to: { dependencyTypes: ['core'], pathNot: '^(node:)?(events|buffer)$' },
    },
    {
      name: 'app-job-side-is-not-a-worker',
      severity: 'error',
      from: { path: APP_JOB_SIDE },
      to: { path: '^(web|e2e|bench|scripts)/' },
    },
    {
      name: 'app-job-side-for-the-server',
      comment: 'only the server, benchmarks, scripts, tests and the job side itself import an app job side',
      severity: 'error',
      from: { pathNot: ['^(server|bench|scripts)/', APP_JOB_SIDE, '(\\.test|testkit)\\.ts$'] },
      to: { path: APP_JOB_SIDE },
    },
    {
      name: 'shared-has-no-io',
      comment: 'shared/ runs in Node and the browser: no I/O modules (test support files excepted)',
      severity: 'error',
      from: { path: '^shared/', pathNot: '(\\.test\\.ts$|compliance\\.ts$)' },
      to: { dependencyTypes: ['core'], pathNot: '^(node:)?(events|buffer)$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
  },
};
