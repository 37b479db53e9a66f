// Package scheduler is Seakeeper's imperative shell: the only place that
// sequences things. It will read Gerrit events, call the pure pipeline core,
// persist each turn, dispatch the resulting actions to the adapters (merger,
// argo, gerrit) and feed their results back as events; it also owns
// recovery after a restart and leader election.
//
// For now it holds the main configuration: Config, its defaults, and
// LoadConfig / ParseMainConfig, which read it strictly and report every
// problem as "file:line: path: message".
package scheduler
