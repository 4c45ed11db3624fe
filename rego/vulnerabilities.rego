# Deny vulnerabilities at or above a severity, with an allow-list whose
# entries expire.
#
# data.portcullis.config.vulnerabilities:
#   severity:  lowest denied severity: CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
#   onlyFixed: if true, deny only findings that have a fixed version
#   allow:     [{id, expires: "YYYY-MM-DD", reason}]: findings with this id
#              pass (with a warning) until the start of the expiry date (UTC);
#              after it they are denied again, saying the entry expired
#   actions:   optional list of actions covered
#
# Findings come from the registry's scan (input.evidence.vulnerabilities.scan)
# and from verified vulnerability attestations (...attested[].report). Without
# either the image is denied: no report is not the same as no findings.
package portcullis.policies.vulnerabilities

import data.portcullis.lib

config := data.portcullis.config.vulnerabilities

vulns := input.evidence.vulnerabilities

default severity := "HIGH"

severity := upper(config.severity)

threshold := lib.severity_rank[severity]

# A severity that is not one of the five would deny nothing: refuse it.
deny contains lib.message("vulnerabilities", msg, {"severity": severity}) if {
	lib.applies(config)
	not lib.severity_rank[severity]
	msg := sprintf("policy configuration error: vulnerabilities.severity is %q, want one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN; fix data.portcullis.config.vulnerabilities", [severity])
}

allow_list := object.get(config, "allow", [])

# blocking are the findings at or above the threshold (with a fix, if
# onlyFixed), before the allow-list. Computed once per decision.
blocking := scan_blocking | attested_blocking if lib.applies(config)

# denied_severities are the severities at or above the threshold: a set
# lookup per finding is the cheapest test on a report of hundreds.
denied_severities := {s | some s, rank in lib.severity_rank; rank >= threshold}

# Without onlyFixed, every finding of a denied severity blocks; with it, only
# those with a fixed version. (Two rules each rather than a function call
# per finding: reports hold hundreds.)
scan_blocking := {v |
	denied := denied_severities
	some v in vulns.scan.vulnerabilities
	denied[v.severity]
} if not config.onlyFixed

scan_blocking := {v |
	denied := denied_severities
	some v in vulns.scan.vulnerabilities
	denied[v.severity]
	v.fixedVersion != ""
} if config.onlyFixed

attested_blocking := {v |
	denied := denied_severities
	some r in vulns.attested
	some v in r.report.vulnerabilities
	denied[v.severity]
} if not config.onlyFixed

attested_blocking := {v |
	denied := denied_severities
	some r in vulns.attested
	some v in r.report.vulnerabilities
	denied[v.severity]
	v.fixedVersion != ""
} if config.onlyFixed

expiry_ns(e) := time.parse_ns("2006-01-02", e.expires)

# allowed maps each CVE id on the allow-list with an entry still valid to
# that entry.
allowed[e.id] := e if {
	some e in allow_list
	lib.now_ns < expiry_ns(e)
}

expired contains e if {
	some e in allow_list
	lib.now_ns >= expiry_ns(e)
	not allowed[e.id]
}

deny contains lib.message("vulnerabilities", msg, finding(v)) if {
	some v in blocking
	not allowed[v.id]
	not expired_ids[v.id]
	msg := sprintf("image %s has %s vulnerability %s in %s %s; %s", [
		lib.image, v.severity, v.id, v.package, installed(v), remedy(v),
	])
}

expired_ids := {e.id | some e in expired}

deny contains lib.message("vulnerabilities", msg, object.union(finding(v), {"expired": e.expires})) if {
	some v in blocking
	some e in expired
	e.id == v.id
	msg := sprintf("image %s has %s vulnerability %s in %s %s, and its allow-list entry expired on %s; %s, or renew the entry with a later expiry date", [
		lib.image, v.severity, v.id, v.package, installed(v), e.expires, fix_hint(v),
	])
}

deny contains lib.message("vulnerabilities", msg, {}) if {
	lib.applies(config)
	vulns.scan == null
	count(vulns.attested) == 0
	msg := sprintf("image %s has no vulnerability report%s; scan it with portcullis scan %s, or attach a report with cosign attest --type vuln", [
		lib.image, lib.errors_for("scan"), lib.image,
	])
}

warn contains lib.message("vulnerabilities", msg, object.union(finding(v), {"allowedUntil": e.expires})) if {
	some v in blocking
	e := allowed[v.id]
	msg := sprintf("image %s has %s vulnerability %s in %s %s, allowed until %s (%s)", [
		lib.image, v.severity, v.id, v.package, installed(v), e.expires, object.get(e, "reason", "no reason given"),
	])
}

finding(v) := {
	"id": v.id,
	"package": v.package,
	"severity": v.severity,
	"installedVersion": object.get(v, "installedVersion", ""),
	"fixedVersion": object.get(v, "fixedVersion", ""),
}

installed(v) := object.get(v, "installedVersion", "(version unknown)")

remedy(v) := sprintf("upgrade %s to %s or later", [v.package, v.fixedVersion]) if {
	v.fixedVersion != ""
} else := sprintf("no fix is available yet: remove %s, or add %s to the allow-list with an expiry date", [v.package, v.id])

fix_hint(v) := sprintf("upgrade %s to %s or later", [v.package, v.fixedVersion]) if {
	v.fixedVersion != ""
} else := sprintf("remove %s", [v.package])
