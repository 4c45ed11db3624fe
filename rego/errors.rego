# Fail closed when the gate could not check something.
#
# Always on. Every entry of input.evidence.errors (a check the gate could not
# make: "signatures", "attestations", "scan", ...) denies, unless
# data.portcullis.config.errors.warnOnly lists that check: then it warns.
package portcullis.policies.errors

import data.portcullis.lib

default warn_only := []

warn_only := data.portcullis.config.errors.warnOnly

deny contains lib.message("errors", msg, {"check": e.check}) if {
	some e in input.evidence.errors
	not e.check in warn_only
	msg := sprintf("could not check %s for image %s: %s; the image is denied until the check succeeds", [e.check, lib.image, e.message])
}

warn contains lib.message("errors", msg, {"check": e.check}) if {
	some e in input.evidence.errors
	e.check in warn_only
	msg := sprintf("could not check %s for image %s: %s (allowed by configuration)", [e.check, lib.image, e.message])
}
