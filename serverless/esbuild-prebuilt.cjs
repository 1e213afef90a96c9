// serverless-esbuild, as it is, except that a local cloud which found its handlers already built
// for the same sources (local/handler-cache.ts) says TROVELESS_HANDLERS_PREBUILT=true and the
// plugin skips its build. `serverless package` and deploys never set it: they always build.
const EsbuildServerlessPlugin = require('serverless-esbuild');

class PrebuiltEsbuildPlugin extends EsbuildServerlessPlugin {
  constructor(serverless, options, logging) {
    super(serverless, options, logging);
    if (process.env.TROVELESS_HANDLERS_PREBUILT === 'true') {
      // The plugin's hooks call this.bundle() at the time they run; its preparation (the package
      // patterns the later hooks read) still happens, only esbuild does not run.
      this.bundle = async () => {
        this.prepare();
        this.log.verbose('handlers already built for these sources: no build');
      };
    }
  }
}

module.exports = PrebuiltEsbuildPlugin;
