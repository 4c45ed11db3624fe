# The policy protected namespaces get when portcullis.yaml has no "policies"
# section: at least one signature verified by an authority of
# trust.authorities. portcullis serve writes this file into
# <data>/policies/default-protected/ when it is missing and never
# overwrites it, so edits here survive restarts; delete it to get the
# shipped version back. data.json next to it is rewritten at every start
# from portcullis.yaml. Configure policies to replace it (docs/policies.md).
package portcullis.policies.default_signed

import data.portcullis.lib

authorities := data.portcullis.config.defaultSigned.authorities

deny contains lib.message("default_signed", msg, {}) if {
	count([a | some a, sigs in input.evidence.signatures.byAuthority; count(sigs) > 0]) == 0
	msg := sprintf("image %s has no signature verified by a configured authority (%s); sign it with cosign sign --key cosign.key %s and list cosign.pub under trust.authorities in portcullis.yaml", [lib.image, concat(", ", authorities), lib.image])
}
