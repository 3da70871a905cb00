// Package router is the WCP decision engine: it compiles rules.json into a
// RuleSet and decides a RouteInput against it (Decide), reproducing PyHall's
// make_decision check by check, in the same order, with the same deny codes,
// payload keys, skip reasons and telemetry.
//
// Decide is pure apart from the extension points it is given (registry view,
// policy gate, hash sources, privilege check): it reads no files and starts
// no goroutines. It never returns an error and never panics: every failure,
// including a failing extension point, is a denied RouteDecision.
//
// Where PyHall raises an exception for malformed rule content (a null
// candidate list, an "in" that is not a list, a non-string rule_id...),
// Compile reports a load error naming the rule and field instead, so a bad
// rules.json is refused before it can route anything.
package router
