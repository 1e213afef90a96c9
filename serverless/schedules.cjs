// Whether the schedule events run. Always in AWS; the e2e cloud turns them off
// (TROVELESS_SCHEDULES=off) and invokes the scheduled functions itself, so that a sync or a
// scheduler run never lands in the middle of a test that is watching the same instance.
module.exports = () => ({ enabled: process.env.TROVELESS_SCHEDULES !== 'off' });
