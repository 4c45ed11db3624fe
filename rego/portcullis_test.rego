package portcullis_test

import data.portcullis

test_policies_are_gathered if {
	inp := {
		"action": "admit",
		"subject": {"repository": "prod/app", "digest": "sha256:abc", "tag": "latest", "reference": "prod/app:latest"},
		"evidence": {"errors": [{"check": "scan", "message": "timeout"}], "signatures": {"byAuthority": {}, "unverified": []}},
	}
	c := {"references": {}, "signatures": {"authorities": ["release"]}}
	policies := {d.details.policy | some d in portcullis.deny} with input as inp with data.portcullis.config as c
	policies == {"errors", "references", "signatures"}
}

test_nothing_configured_allows if {
	inp := {"action": "admit", "subject": {"repository": "prod/app", "digest": "sha256:abc"}, "evidence": {"errors": []}}
	count(portcullis.deny) == 0 with input as inp with data.portcullis.config as {}
}
