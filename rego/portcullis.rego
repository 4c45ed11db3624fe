# The decision Portcullis reads: data.portcullis.deny and data.portcullis.warn.
# Each library policy in data.portcullis.policies.<name> contributes to them;
# a bundle can add its own package under data.portcullis.policies, or add
# rules to deny and warn here.
package portcullis

deny contains m if {
	some name
	some m in data.portcullis.policies[name].deny
}

warn contains m if {
	some name
	some m in data.portcullis.policies[name].warn
}
