// Trove's guest_log_expiry, in whole days because that is what an S3 lifecycle rule counts: one
// deployment setting for both the bucket's rule (serverless/buckets.yml) and what the log view
// says (TROVELESS_GUEST_LOG_EXPIRY, seconds, in every function's environment).
module.exports = () => {
  const raw = process.env.TROVELESS_GUEST_LOG_EXPIRY_DAYS;
  const days = raw === undefined || raw === '' ? 30 : Number(raw);
  if (!Number.isInteger(days) || days < 1)
    throw new Error('TROVELESS_GUEST_LOG_EXPIRY_DAYS must be a whole number of days, at least 1');
  return { days, seconds: String(days * 86_400) };
};
