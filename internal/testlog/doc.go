// Package testlog holds what tests need to capture the logs of code that
// runs in several goroutines: a buffer safe for concurrent writers.
//
// It is for tests only and must not be imported by production code.
package testlog
