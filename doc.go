// Command seakeeper is a gating daemon for Gerrit: it tests changes in
// pipelines on Kubernetes with Argo Workflows, votes, and merges what passes.
// See README.md.
//
// This package is only the command line: it parses flags, loads the
// configuration and hands over to the scheduler. It must not hold gating
// logic of its own.
package main
