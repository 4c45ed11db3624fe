package audit

// SetProbeRows sets how many of the newest records l's SQL store scans for
// a filtered search before it turns to its indexes (see sqlStore's Search),
// and returns the previous setting: audittest.Harness.SetProbeRows.
func SetProbeRows(l *Log, n int) (previous int) {
	s := l.store.(*sqlStore)
	previous, s.probeRows = s.probeRows, n
	return previous
}
