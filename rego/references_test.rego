package portcullis.policies.references_test

import data.portcullis.policies.references

cfg := {"references": {}}

admit(ref, tag) := {
	"action": "admit",
	"subject": {"repository": "prod/app", "digest": "sha256:abc", "tag": tag, "reference": ref},
}

test_pinned_reference_passes if {
	count(references.deny) == 0 with input as admit("r.example/prod/app:1.2@sha256:abc", "1.2") with data.portcullis.config as cfg
}

test_latest_denied if {
	denies := references.deny with input as admit("r.example/prod/app:latest", "latest") with data.portcullis.config as cfg
	count(denies) == 1
	some d in denies
	d.msg == `image reference "r.example/prod/app:latest" uses the mutable tag "latest"; pin a release by digest instead, e.g. r.example/prod/app@sha256:abc`
}

test_tag_only_denied if {
	some d in references.deny with input as admit("r.example/prod/app:1.2", "1.2") with data.portcullis.config as cfg
	d.msg == `image reference "r.example/prod/app:1.2" is not pinned by digest; use r.example/prod/app@sha256:abc so that the image cannot change after it was checked`
}

test_promotion_not_covered_by_default if {
	inp := object.union(admit("r.example/prod/app:latest", "latest"), {"action": "promote"})
	count(references.deny) == 0 with input as inp with data.portcullis.config as cfg
}

test_tag_only_allowed_when_configured if {
	c := {"references": {"allowTagOnly": true}}
	count(references.deny) == 0 with input as admit("r.example/prod/app:1.2", "1.2") with data.portcullis.config as c
}
