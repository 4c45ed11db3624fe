# Require signatures verified by named authorities.
#
# data.portcullis.config.signatures:
#   authorities:  names of trust authorities (portcullis.yaml) that must each
#                 have verified a signature of the image
#   signCommands: optional {authority: command} telling how to sign for it,
#                 e.g. {"release": "cosign sign --key kms://..."}
#   actions:      optional list of actions (push, promote, admit) covered
package portcullis.policies.signatures

import data.portcullis.lib

config := data.portcullis.config.signatures

by_authority := input.evidence.signatures.byAuthority

deny contains lib.message("signatures", msg, {"authority": name}) if {
	lib.applies(config)
	some name in config.authorities
	count(object.get(by_authority, name, [])) == 0
	msg := sprintf("image %s has no signature verified by authority %q%s; sign it with %s %s", [
		lib.image, name, found(name), sign_command(name), lib.image,
	])
}

# found explains what was found instead: signatures other authorities
# verified, and signatures that did not verify.
found(name) := sprintf(" (%s)", [concat("; ", notes)]) if {
	notes := [n | some n in [others(name), unverified]; n != ""]
	count(notes) > 0
} else := lib.errors_for("signatures")

others(name) := sprintf("signed for %s only", [concat(", ", sort([sprintf("%q", [a]) |
	some a, sigs in by_authority
	a != name
	count(sigs) > 0
]))]) if {
	some a, sigs in by_authority
	a != name
	count(sigs) > 0
} else := ""

unverified := sprintf("%d signature(s) did not verify: %s", [count(reasons), concat("; ", reasons)]) if {
	reasons := [s.reason | some s in input.evidence.signatures.unverified]
	count(reasons) > 0
} else := ""

sign_command(name) := cmd if {
	cmd := config.signCommands[name]
} else := sprintf("cosign sign --key <key of authority %q>", [name])
