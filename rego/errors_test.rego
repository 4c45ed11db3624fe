package portcullis.policies.errors_test

import data.portcullis.policies.errors

failed := {
	"subject": {"repository": "staging/app", "digest": "sha256:abc"},
	"evidence": {"errors": [{"check": "scan", "message": "scanner timed out"}]},
}

test_errors_deny_without_configuration if {
	some d in errors.deny with input as failed
	d.msg == "could not check scan for image staging/app@sha256:abc: scanner timed out; the image is denied until the check succeeds"
}

test_warn_only_downgrades if {
	c := {"errors": {"warnOnly": ["scan"]}}
	count(errors.deny) == 0 with input as failed with data.portcullis.config as c
	count(errors.warn) == 1 with input as failed with data.portcullis.config as c
}
