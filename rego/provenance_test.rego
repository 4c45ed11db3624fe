package portcullis.policies.provenance_test

import data.portcullis.policies.provenance

builder := "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0"

cfg := {"provenance": {
	"builders": ["https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@*"],
	"sourceRepositories": ["https://github.com/acme/*"],
}}

good := {
	"action": "promote",
	"subject": {"repository": "staging/app", "digest": "sha256:abc"},
	"evidence": {"provenance": [{"builderId": builder, "sourceRepository": "https://github.com/acme/app"}], "errors": []},
}

with_provenance(p) := json.patch(good, [{"op": "replace", "path": "/evidence/provenance", "value": p}])

test_allowed_builder_and_source_pass if {
	count(provenance.deny) == 0 with input as good with data.portcullis.config as cfg
}

test_missing_provenance_denied if {
	some d in provenance.deny with input as with_provenance([]) with data.portcullis.config as cfg
	startswith(d.msg, "image staging/app@sha256:abc has no verified SLSA provenance; build it on an allowed builder")
}

test_untrusted_builder_denied if {
	inp := with_provenance([{"builderId": "https://evil.example/builder", "sourceRepository": "https://github.com/acme/app"}])
	denies := provenance.deny with input as inp with data.portcullis.config as cfg
	count(denies) == 1
	some d in denies
	d.details.builderId == "https://evil.example/builder"
	contains(d.msg, `was built by "https://evil.example/builder", which is not an allowed builder`)
}

test_untrusted_source_denied if {
	inp := with_provenance([{"builderId": builder, "sourceRepository": "https://github.com/mallory/app"}])
	some d in provenance.deny with input as inp with data.portcullis.config as cfg
	contains(d.msg, `built from source repository "https://github.com/mallory/app", which is not allowed`)
}

test_one_trusted_provenance_is_enough if {
	inp := with_provenance([{"builderId": "https://evil.example/builder"}, {"builderId": builder, "sourceRepository": "https://github.com/acme/app"}])
	count(provenance.deny) == 0 with input as inp with data.portcullis.config as cfg
}

test_no_source_restriction if {
	inp := with_provenance([{"builderId": builder}])
	c := {"provenance": {"builders": [builder]}}
	count(provenance.deny) == 0 with input as inp with data.portcullis.config as c
}
