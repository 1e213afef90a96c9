// Trove's usage_timeout and agent_call_{high,low}_timeout in seconds, fixed in the state
// machines at deploy time (as operator settings are in Trove). A JS file because serverless
// variables resolve environment values to strings and ASL wants integers.
const seconds = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name} must be a positive number of seconds`);
  return Number(raw);
};

module.exports = () => ({
  usage: seconds('TROVELESS_USAGE_TIMEOUT', 1800),
  callHigh: seconds('TROVELESS_AGENT_CALL_HIGH_TIMEOUT', 180),
  callLow: seconds('TROVELESS_AGENT_CALL_LOW_TIMEOUT', 15),
  // How long a backup may run before it is marked FAILED (a guest that died mid-backup).
  backup: seconds('TROVELESS_BACKUP_TIMEOUT', 6 * 3600),
});
