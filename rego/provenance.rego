# Require SLSA provenance from allowed builders and source repositories.
#
# data.portcullis.config.provenance:
#   builders:           allowed builder ids; an entry ending in "*" is a prefix
#   sourceRepositories: allowed source repositories, same matching; omitted
#                       or empty: any
#   actions:            optional list of actions covered
#
# At least one verified provenance (input.evidence.provenance) must name an
# allowed builder and an allowed source repository.
package portcullis.policies.provenance

import data.portcullis.lib

config := data.portcullis.config.provenance

provenance := input.evidence.provenance

builders := concat(", ", config.builders)

deny contains lib.message("provenance", msg, {}) if {
	lib.applies(config)
	count(provenance) == 0
	msg := sprintf("image %s has no verified SLSA provenance%s; build it on an allowed builder (%s) and attach its provenance with cosign attest --type slsaprovenance1 --predicate provenance.json %s", [
		lib.image, lib.errors_for("attestations"), builders, lib.image,
	])
}

deny contains lib.message("provenance", msg, {"builderId": p.builderId}) if {
	lib.applies(config)
	not trusted
	some p in provenance
	not builder_allowed(p)
	msg := sprintf("image %s was built by %q, which is not an allowed builder (allowed: %s); rebuild it on an allowed builder", [
		lib.image, p.builderId, builders,
	])
}

deny contains lib.message("provenance", msg, {"builderId": p.builderId, "sourceRepository": repo}) if {
	lib.applies(config)
	not trusted
	some p in provenance
	builder_allowed(p)
	not source_allowed(p)
	repo := object.get(p, "sourceRepository", "")
	msg := sprintf("image %s was built from source repository %q, which is not allowed (allowed: %s); build it from an allowed repository", [
		lib.image, repo, concat(", ", config.sourceRepositories),
	])
}

# trusted holds when one provenance satisfies every requirement.
trusted if {
	some p in provenance
	builder_allowed(p)
	source_allowed(p)
}

builder_allowed(p) if lib.matches(config.builders, p.builderId)

source_allowed(_) if count(object.get(config, "sourceRepositories", [])) == 0

source_allowed(p) if lib.matches(config.sourceRepositories, p.sourceRepository)
