// Package wcp holds the Worker Class Protocol (WCP v0.1) wire types the Hall
// speaks: RouteInput, RouteDecision and its parts, HallConfig, routing rules,
// worker registry records and telemetry events, plus the one table of deny
// codes and the one place where WCP identifiers are validated.
//
// Every type's JSON round-trips the wire format PyHall (the Python reference
// implementation) produces. Records and rules keep members they do not
// declare (see Extra), so nothing a user wrote is dropped.
//
// The package has no behaviour beyond parsing and validation: decisions are
// made by package router, enrollment by package registry.
//
// Canonical JSON (RFC 8785) has one engine, [CanonicalJSON]; the
// hand-written appenders for hot paths and the test that keeps each equal
// to it are listed in RATIONALE.md next to this file.
package wcp
