package portcullis.policies.scan_test

import data.portcullis.policies.scan

cfg := {"scan": {"maxAgeHours": 24, "maxDBAgeHours": 72}}

with_scan(s) := {
	"action": "admit",
	"time": "2026-11-23T12:00:00Z",
	"subject": {"repository": "prod/app", "digest": "sha256:abc"},
	"evidence": {"vulnerabilities": {"scan": s, "attested": []}, "errors": []},
}

fresh := {"scannedAt": "2026-11-23T10:00:00Z", "db": {"builtAt": "2026-11-23T00:00:00Z"}}

test_fresh_scan_passes if {
	count(scan.deny) == 0 with input as with_scan(fresh) with data.portcullis.config as cfg
}

test_stale_scan_denied if {
	s := object.union(fresh, {"scannedAt": "2026-11-21T11:00:00Z", "db": {"builtAt": "2026-11-21T00:00:00Z"}})
	denies := scan.deny with input as with_scan(s) with data.portcullis.config as cfg
	count(denies) == 1
	some d in denies
	d.msg == "image prod/app@sha256:abc was last scanned 49h ago (at 2026-11-21T11:00:00Z), more than the allowed 24h; rescan it with portcullis scan prod/app@sha256:abc"
}

test_stale_db_denied if {
	s := object.union(fresh, {"db": {"builtAt": "2026-11-19T09:00:00Z"}})
	some d in scan.deny with input as with_scan(s) with data.portcullis.config as cfg
	contains(d.msg, "built 97h before the scan (at 2026-11-19T09:00:00Z), more than the allowed 72h")
}

test_not_scanned_denied_with_reason if {
	inp := json.patch(with_scan(null), [{"op": "replace", "path": "/evidence/errors", "value": [{"check": "scan", "message": "database is missing"}]}])
	some d in scan.deny with input as inp with data.portcullis.config as cfg
	startswith(d.msg, "image prod/app@sha256:abc has not been scanned by the registry's scanner (database is missing);")
}
