package portcullis.policies.vulnerabilities_test

import data.portcullis.policies.vulnerabilities

cfg := {"vulnerabilities": {
	"severity": "HIGH",
	"onlyFixed": true,
	"allow": [
		{"id": "CVE-2024-0002", "expires": "2027-01-01", "reason": "not reachable"},
		{"id": "CVE-2024-0003", "expires": "2026-01-01", "reason": "old exception"},
	],
}}

scan(vs) := {
	"action": "promote",
	"time": "2026-11-23T12:00:00Z",
	"subject": {"repository": "staging/app", "digest": "sha256:abc"},
	"evidence": {"vulnerabilities": {"scan": {"vulnerabilities": vs}, "attested": []}, "errors": []},
}

critical_fixed := {"id": "CVE-2024-0001", "package": "openssl", "installedVersion": "3.0.1", "fixedVersion": "3.0.2", "severity": "CRITICAL"}

test_clean_scan_passes if {
	count(vulnerabilities.deny) == 0 with input as scan([]) with data.portcullis.config as cfg
}

test_critical_with_fix_denied if {
	denies := vulnerabilities.deny with input as scan([critical_fixed]) with data.portcullis.config as cfg
	some d in denies
	d.msg == "image staging/app@sha256:abc has CRITICAL vulnerability CVE-2024-0001 in openssl 3.0.1; upgrade openssl to 3.0.2 or later"
}

test_below_threshold_passes if {
	v := object.union(critical_fixed, {"severity": "MEDIUM"})
	count(vulnerabilities.deny) == 0 with input as scan([v]) with data.portcullis.config as cfg
}

test_without_fix_passes_when_only_fixed if {
	v := object.remove(critical_fixed, ["fixedVersion"])
	count(vulnerabilities.deny) == 0 with input as scan([v]) with data.portcullis.config as cfg
}

test_without_fix_denied_otherwise if {
	v := object.remove(critical_fixed, ["fixedVersion"])
	c := {"vulnerabilities": {"severity": "CRITICAL"}}
	some d in vulnerabilities.deny with input as scan([v]) with data.portcullis.config as c
	contains(d.msg, "no fix is available yet: remove openssl, or add CVE-2024-0001 to the allow-list")
}

test_allow_listed_warns if {
	v := object.union(critical_fixed, {"id": "CVE-2024-0002"})
	count(vulnerabilities.deny) == 0 with input as scan([v]) with data.portcullis.config as cfg
	some w in vulnerabilities.warn with input as scan([v]) with data.portcullis.config as cfg
	contains(w.msg, "allowed until 2027-01-01 (not reachable)")
}

test_expired_allow_list_entry_denied if {
	v := object.union(critical_fixed, {"id": "CVE-2024-0003"})
	denies := vulnerabilities.deny with input as scan([v]) with data.portcullis.config as cfg
	count(denies) == 1
	some d in denies
	contains(d.msg, "its allow-list entry expired on 2026-01-01; upgrade openssl to 3.0.2 or later, or renew the entry")
}

test_attested_report_counts if {
	inp := json.patch(scan([]), [
		{"op": "replace", "path": "/evidence/vulnerabilities/scan", "value": null},
		{"op": "replace", "path": "/evidence/vulnerabilities/attested", "value": [{"report": {"vulnerabilities": [critical_fixed]}}]},
	])
	count(vulnerabilities.deny) == 1 with input as inp with data.portcullis.config as cfg
}

test_no_report_denied if {
	inp := json.patch(scan([]), [{"op": "replace", "path": "/evidence/vulnerabilities/scan", "value": null}])
	some d in vulnerabilities.deny with input as inp with data.portcullis.config as cfg
	startswith(d.msg, "image staging/app@sha256:abc has no vulnerability report; scan it with portcullis scan")
}

test_bad_severity_denied if {
	c := {"vulnerabilities": {"severity": "SEVERE"}}
	some d in vulnerabilities.deny with input as scan([]) with data.portcullis.config as c
	startswith(d.msg, "policy configuration error")
}
