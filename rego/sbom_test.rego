package portcullis.policies.sbom_test

import data.portcullis.policies.sbom

cfg := {"sbom": {"deniedLicenses": ["GPL-3.0-only", "AGPL-3.0-only"]}}

with_sbom(s) := {
	"action": "promote",
	"subject": {"repository": "staging/app", "digest": "sha256:abc"},
	"evidence": {"sbom": s, "errors": []},
}

permissive := {
	"source": "attestation",
	"components": [{"name": "zlib", "version": "1.3", "licenses": ["Zlib"]}],
	"licenses": ["Zlib"],
	"licenseIds": ["Zlib"],
}

test_permissive_sbom_passes if {
	count(sbom.deny) == 0 with input as with_sbom(permissive) with data.portcullis.config as cfg
}

test_missing_sbom_denied if {
	some d in sbom.deny with input as with_sbom(null) with data.portcullis.config as cfg
	startswith(d.msg, "image staging/app@sha256:abc has no SBOM;")
}

test_missing_sbom_allowed_when_not_required if {
	c := {"sbom": {"require": false}}
	count(sbom.deny) == 0 with input as with_sbom(null) with data.portcullis.config as c
}

test_banned_license_in_expression_denied if {
	s := {
		"source": "scanner",
		"components": [
			{"name": "zlib", "version": "1.3", "licenses": ["Zlib"]},
			{"name": "readline", "version": "8.2", "licenses": ["(MIT OR GPL-3.0-only)"]},
		],
		"licenses": ["(MIT OR GPL-3.0-only)", "Zlib"],
		"licenseIds": ["GPL-3.0-only", "MIT", "Zlib"],
	}
	denies := sbom.deny with input as with_sbom(s) with data.portcullis.config as cfg
	count(denies) == 1
	some d in denies
	d.msg == `image staging/app@sha256:abc contains readline 8.2 under license "GPL-3.0-only", which is denied; remove or replace the component, or ask for the license to be allowed`
}

test_scanner_sbom_refused_when_attestation_required if {
	c := {"sbom": {"requireAttested": true}}
	s := object.union(permissive, {"source": "scanner"})
	some d in sbom.deny with input as with_sbom(s) with data.portcullis.config as c
	contains(d.msg, "has no verified SBOM attestation")
}
