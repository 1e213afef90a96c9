// What serverless-esbuild watches under `serverless offline`. Off unless TROVELESS_WATCH=true
// (`npm start -- --watch`): it rebuilds every handler on each change, unthrottled, so a burst of
// edits (a checkout, a formatter run) starts many full builds at once; tests never want it.
module.exports = () =>
  process.env.TROVELESS_WATCH === 'true'
    ? {
        pattern: ['functions/**/*.ts', 'lib/**/*.ts', 'agent/**/*.ts', 'test/fixtures/**/*.ts'],
        ignore: ['.local', '.esbuild', 'node_modules'],
      }
    : { pattern: [], ignore: ['**'] };
