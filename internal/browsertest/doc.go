// Package browsertest drives headless Chromium for the browser tier of the
// tests (DESIGN §6, tier 4): it finds the Debian chromium binary, starts it
// with a fresh profile, runs chromedp actions under a generous bound, reads
// what assistive technology sees of an element, and saves screenshots,
// checked to be valid PNGs, where CI collects them ($SEAKEEPER_ARTIFACTS).
//
// Without chromium a test that asks for a browser is skipped, with the
// reason, or fails when CI=true (test.sh installs the Debian package).
//
// What it must not do: be imported by production code (it is for tests
// only and takes a testing.TB); download or install a browser; know the
// markup of a particular page (tests read their page themselves); sleep or
// time anything (a bound on an action guards against a hung browser, it is
// not a measure).
package browsertest
