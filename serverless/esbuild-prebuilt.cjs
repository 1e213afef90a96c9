// serverless-esbuild, as it is, with two changes:
// - a local cloud which found its handlers already built for the same sources
//   (local/handler-cache.ts) says TROVELESS_HANDLERS_PREBUILT=true and the plugin skips its build.
//   `serverless package` and deploys never set it: they always build.
// - each function's zip is staged in a directory of the OS temp dir that the plugin (1.57) means
//   to remove but never does (its removal is not recursive and its error is swallowed; upstream
//   floydspace/serverless-esbuild#589): ~5 MB a function, ~0.5 GB a `serverless package` of this
//   service. This process's own are removed once its artifacts are made, and at its exit (a
//   packaging that failed half-way).
const { readdirSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
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
    process.once('exit', () => {
      try {
        this.removeZipStaging();
      } catch {
        // Nothing to report at exit: what stays is what the plugin alone would have left.
      }
    });
  }

  async cleanup() {
    try {
      await super.cleanup();
    } finally {
      this.removeZipStaging();
    }
  }

  /**
   * The plugin's staging directories, `<artifact>-<this pid>-<ms>-<8 hex>` (its utils.js zip()):
   * an artifact is a function's key (packaged individually) or the service's name.
   */
  removeZipStaging() {
    const service = this.serverless.service;
    removeStaging(new Set([...service.getAllFunctions(), service.service]));
  }
}

function removeStaging(names) {
  const ours = new RegExp(`^(.+)-${process.pid}-\\d+-[0-9a-f]{8}$`);
  for (const entry of readdirSync(tmpdir())) {
    const artifact = ours.exec(entry)?.[1];
    if (artifact && names.has(artifact)) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

module.exports = PrebuiltEsbuildPlugin;
