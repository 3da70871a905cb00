// Package policy compiles and evaluates the Hall's policies as code: CEL
// expressions an operator writes in a policy file (policy.json in the
// Hall's directory, or host.Options.Policies) that see a bound dispatch plan and answer ALLOW, DENY (with
// a reason) or REQUIRE_HUMAN.
//
// A [Set] is compiled once (per Hall snapshot) from a [File]; every
// expression is parsed and type-checked at load, and a problem names the
// file, the policy and the position in its expression. [Set.Evaluate]
// runs every applicable policy against one [Facts] value: DENY overrides
// REQUIRE_HUMAN, which overrides ALLOW (the answer when no policy
// matches); an evaluation error fails closed as a DENY naming the policy.
//
// The package knows nothing about routing or dispatch: package host builds
// the Facts from the decision and its bound worker and turns the answer
// into WCP's DENY_POLICY_GATE / DENY_REQUIRES_HUMAN_APPROVAL.
//
// # Notes
//
//   - The set's digest ("sha256:<hex>" of the file's bytes) is the
//     policy_version of every decision the set took part in.
//   - CEL programs are immutable and safe for concurrent use; a Set is
//     too.
//   - docs/POLICY.md describes the file format, the variables and a worked
//     example.
package policy
