package wcp

// CheckDecision is checkDecision for the external tests (decisions made by
// package router from the conformance vectors).
var CheckDecision = checkDecision
