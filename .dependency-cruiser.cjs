/**
 * Import rules of docs/architecture.md §11, checked by `npm run lint`:
 * shared ← client ← web; shared ← server; e2e only through HTTP and the browser; no cycles.
 */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'shared-imports-nothing-of-ours',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(server|client|web|e2e|bench|scripts)/' },
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
    {
      name: 'e2e-uses-http-and-browser-only',
      severity: 'error',
      from: { path: '^e2e/', pathNot: '^e2e/oracle\\.ts$' },
      to: { path: '^(server|client|shared|web|bench)/' },
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
