# Helpers shared by the library policies.
package portcullis.lib

# image names the subject in messages: repository@digest.
image := sprintf("%s@%s", [input.subject.repository, input.subject.digest])

# now_ns is the evaluation time the caller put in the input, so that a
# decision can be replayed.
now_ns := time.parse_rfc3339_ns(input.time)

hour_ns := 3600000000000

severity_rank := {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "UNKNOWN": 0}

# applies(cfg) holds when the policy configured by cfg covers input.action:
# cfg.actions lists the actions it covers; without it, every action.
applies(cfg) if not cfg.actions

applies(cfg) if input.action in cfg.actions

# message builds a decision message with structured details naming the
# policy that produced it.
message(policy, msg, details) := {"msg": msg, "details": object.union(details, {"policy": policy})}

# matches(patterns, s) holds when s equals a pattern, or starts with a pattern
# ending in "*" (without the "*").
matches(patterns, s) if s in patterns

matches(patterns, s) if {
	some p in patterns
	endswith(p, "*")
	startswith(s, trim_suffix(p, "*"))
}

# errors_for(check) joins the could-not-check messages the gate recorded for
# a check, as " (check failed: ...)", or "" when there are none.
errors_for(check) := sprintf(" (%s)", [concat("; ", msgs)]) if {
	msgs := [e.message | some e in input.evidence.errors; e.check == check]
	count(msgs) > 0
} else := ""

# hours formats a duration in nanoseconds as whole hours.
hours(ns) := sprintf("%dh", [floor(ns / hour_ns)])
