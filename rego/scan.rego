# Require a recent scan by the registry's scanner, with a recent database.
#
# data.portcullis.config.scan:
#   maxAgeHours:   the scan must have finished at most this many hours
#                  before input.time
#   maxDBAgeHours: the vulnerability database must have been built at most
#                  this many hours before the scan
#   actions:       optional list of actions covered
package portcullis.policies.scan

import data.portcullis.lib

config := data.portcullis.config.scan

scan := input.evidence.vulnerabilities.scan

deny contains lib.message("scan", msg, {}) if {
	lib.applies(config)
	scan == null
	msg := sprintf("image %s has not been scanned by the registry's scanner%s; scan it with portcullis scan %s", [
		lib.image, lib.errors_for("scan"), lib.image,
	])
}

deny contains lib.message("scan", msg, {"scannedAt": scan.scannedAt, "maxAgeHours": config.maxAgeHours}) if {
	lib.applies(config)
	age := lib.now_ns - time.parse_rfc3339_ns(scan.scannedAt)
	age > config.maxAgeHours * lib.hour_ns
	msg := sprintf("image %s was last scanned %s ago (at %s), more than the allowed %dh; rescan it with portcullis scan %s", [
		lib.image, lib.hours(age), scan.scannedAt, config.maxAgeHours, lib.image,
	])
}

deny contains lib.message("scan", msg, {"dbBuiltAt": scan.db.builtAt, "maxDBAgeHours": config.maxDBAgeHours}) if {
	lib.applies(config)
	age := time.parse_rfc3339_ns(scan.scannedAt) - time.parse_rfc3339_ns(scan.db.builtAt)
	age > config.maxDBAgeHours * lib.hour_ns
	msg := sprintf("image %s was scanned with a vulnerability database built %s before the scan (at %s), more than the allowed %dh; update the database and rescan it with portcullis scan %s", [
		lib.image, lib.hours(age), scan.db.builtAt, config.maxDBAgeHours, lib.image,
	])
}
