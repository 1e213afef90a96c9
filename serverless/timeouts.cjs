// Trove's usage_timeout and agent_call_{high,low}_timeout in seconds, fixed in the state
// machines at deploy time (as operator settings are in Trove). A JS file because serverless
// variables resolve environment values to strings and ASL wants integers.
const seconds = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name} must be a positive number of seconds`);
  return Number(raw);
};

module.exports = () => {
  // A waiting step hears from its guest through the conductor (SendTaskHeartbeat per guest
  // heartbeat): silence past Trove's agent_heartbeat_expiry fails the step with a fault.
  // Defaults to agent_heartbeat_expiry; a slow or loaded control plane may want more slack.
  const heartbeat = seconds(
    'TROVELESS_AGENT_SILENCE_TIMEOUT',
    // Three heartbeat intervals of 60 s (lib/config.ts, docs/cost.md).
    seconds('TROVELESS_AGENT_HEARTBEAT_EXPIRY', 180),
  );
  // A new guest's first heartbeat: the server's boot plus the agent's start. 300 s covers an EC2
  // boot with cloud-init; the local compute host starts an agent in about a second
  // (`npm run bench -- provision` prints the measured start beside this timeout).
  const boot = seconds('TROVELESS_AGENT_BOOT_TIMEOUT', 300);
  const usage = seconds('TROVELESS_USAGE_TIMEOUT', 1800);
  const callHigh = seconds('TROVELESS_AGENT_CALL_HIGH_TIMEOUT', 180);
  const callLow = seconds('TROVELESS_AGENT_CALL_LOW_TIMEOUT', 15);
  // How long a backup may run before it is marked FAILED (a guest that died mid-backup).
  const backup = seconds('TROVELESS_BACKUP_TIMEOUT', 6 * 3600);
  // Step Functions wants HeartbeatSeconds below TimeoutSeconds; a step shorter than the
  // heartbeat window is bounded by its timeout alone.
  const within = (window, timeout) => Math.max(1, Math.min(window, timeout - 1));
  return {
    usage,
    callHigh,
    callLow,
    backup,
    // A cluster workflow asks every 2 s whether its members are built (or gone): a member's own
    // workflow ends within usage_timeout, so the cluster's asks a little longer than that.
    clusterPolls: Math.ceil(usage / 2) + 30,
    heartbeat: {
      // Prepare waits first for the guest to boot, then for each of its heartbeats.
      prepare: within(Math.max(boot, heartbeat), usage),
      restart: within(heartbeat, callHigh),
      stop: within(heartbeat, callLow),
      backup: within(heartbeat, backup),
    },
  };
};
