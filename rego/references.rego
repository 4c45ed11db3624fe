# Deny the "latest" tag and references not pinned by digest.
#
# data.portcullis.config.references:
#   allowLatest:  if true, do not deny the "latest" tag (default false)
#   allowTagOnly: if true, do not deny references without a digest (default
#                 false)
#   actions:      actions covered (default ["admit"]: references as written
#                 in a workload; the webhook resolves them to digests)
package portcullis.policies.references

import data.portcullis.lib

config := data.portcullis.config.references

default actions := ["admit"]

actions := config.actions

covered if {
	config
	input.action in actions
}

ref := object.get(input.subject, "reference", "")

pinned if contains(ref, "@sha256:")

pin := sprintf("%s@%s", [trim_suffix(ref, concat("", [":", input.subject.tag])), input.subject.digest])

deny contains lib.message("references", msg, {"reference": ref}) if {
	covered
	not config.allowLatest
	input.subject.tag == "latest"
	msg := sprintf("image reference %q uses the mutable tag \"latest\"; pin a release by digest instead, e.g. %s", [ref, pin])
}

deny contains lib.message("references", msg, {"reference": ref}) if {
	covered
	not config.allowTagOnly
	ref != ""
	not pinned
	input.subject.tag != "latest"
	msg := sprintf("image reference %q is not pinned by digest; use %s so that the image cannot change after it was checked", [ref, pin])
}
