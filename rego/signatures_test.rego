package portcullis.policies.signatures_test

import data.portcullis.policies.signatures

cfg := {"signatures": {"authorities": ["release"]}}

subject := {"repository": "staging/app", "digest": "sha256:abc"}

signed := {
	"action": "promote",
	"subject": subject,
	"evidence": {"signatures": {
		"byAuthority": {"release": [{"source": "tag", "manifest": "sha256:sig"}]},
		"unverified": [],
	}, "errors": []},
}

test_signed_by_required_authority_passes if {
	count(signatures.deny) == 0 with input as signed with data.portcullis.config as cfg
}

test_unsigned_denied_with_sign_command if {
	inp := json.patch(signed, [{"op": "replace", "path": "/evidence/signatures/byAuthority", "value": {}}])
	denies := signatures.deny with input as inp with data.portcullis.config as cfg
	some d in denies
	d.msg == `image staging/app@sha256:abc has no signature verified by authority "release"; sign it with cosign sign --key <key of authority "release"> staging/app@sha256:abc`
	d.details == {"policy": "signatures", "authority": "release"}
}

test_wrong_signer_says_who_signed if {
	inp := json.patch(signed, [
		{"op": "replace", "path": "/evidence/signatures/byAuthority", "value": {"ci": [{"source": "tag", "manifest": "sha256:sig"}]}},
		{"op": "replace", "path": "/evidence/signatures/unverified", "value": [{"source": "tag", "manifest": "sha256:x", "reason": "release: invalid signature"}]},
	])
	c := {"signatures": {"authorities": ["release"], "signCommands": {"release": "cosign sign --key kms://release"}}}
	denies := signatures.deny with input as inp with data.portcullis.config as c
	some d in denies
	d.msg == `image staging/app@sha256:abc has no signature verified by authority "release" (signed for "ci" only; 1 signature(s) did not verify: release: invalid signature); sign it with cosign sign --key kms://release staging/app@sha256:abc`
}

test_could_not_check_is_explained if {
	inp := json.patch(signed, [
		{"op": "replace", "path": "/evidence/signatures/byAuthority", "value": {}},
		{"op": "replace", "path": "/evidence/errors", "value": [{"check": "signatures", "message": "registry unreachable"}]},
	])
	some d in signatures.deny with input as inp with data.portcullis.config as cfg
	contains(d.msg, `"release" (registry unreachable)`)
}

test_every_authority_required if {
	c := {"signatures": {"authorities": ["release", "security"]}}
	denies := signatures.deny with input as signed with data.portcullis.config as c
	count(denies) == 1
	some d in denies
	d.details.authority == "security"
}

test_not_configured_is_off if {
	count(signatures.deny) == 0 with input as json.patch(signed, [{"op": "replace", "path": "/evidence/signatures/byAuthority", "value": {}}])
		with data.portcullis.config as {}
}

test_other_actions_not_covered if {
	c := {"signatures": {"authorities": ["release"], "actions": ["admit"]}}
	inp := json.patch(signed, [{"op": "replace", "path": "/evidence/signatures/byAuthority", "value": {}}])
	count(signatures.deny) == 0 with input as inp with data.portcullis.config as c
}
