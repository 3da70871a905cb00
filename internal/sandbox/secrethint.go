package sandbox

import "strings"

// EnvSecretVar is the environment variable EnvSecrets reads secret name
// from: HALL_SECRET_<NAME>, NAME upper-cased with every character outside
// [A-Z0-9] replaced by '_'.
func EnvSecretVar(name string) string {
	var b strings.Builder
	b.WriteString("HALL_SECRET_")
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// missingSecretHint names the fix of a declared secret without a value:
// with the default source, the variable to set.
func missingSecretHint(src SecretSource, name string) string {
	if _, env := src.(EnvSecrets); env {
		return " (set " + EnvSecretVar(name) + " in the Hall's environment)"
	}
	return " (the Hall's secret source has none)"
}
