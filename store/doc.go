// Package store is Seakeeper's durable memory: one bbolt file holding the
// pipeline state, the inbox of received events not yet applied, the outbox
// of actions emitted but not yet confirmed done, and a bounded history of
// finished items (for time estimates and the status page).
//
// The scheduler owns the loop; the store only makes its steps durable:
//
//   - AppendInbox writes received events before anything acts on them.
//   - Commit makes one scheduler turn durable in one bbolt transaction: the
//     new state, the removal of the inbox entries the turn consumed, the
//     actions it emitted (outbox), the actions confirmed done, and the
//     finished items. Either all of it is on disk or none of it is.
//   - On start, Load returns the last committed state and Outbox the actions
//     to re-dispatch (idempotently), in emission order; Inbox returns the
//     events still to apply.
//
// It must not interpret pipeline semantics: it never looks inside the state,
// the events or the actions beyond (de)serialising them, and it never
// decides what to apply, dispatch or drop. The only fields it reads are
// action IDs, the pipeline and project of history entries, and schema
// versions. It must not repair, migrate or wipe a file it does not
// understand: an unknown schema version (ErrSchema) or a corrupt or foreign
// file (ErrCorrupt) stops Open with a message naming the file, and the file
// is left byte for byte as it was.
//
// # Layout (schema version 1)
//
//	meta      schema → "1", created → RFC 3339 time of creation
//	state     version → State.Version (decimal), state → State as JSON
//	inbox     8-byte big-endian sequence → Event as JSON
//	outbox    action ID → 8-byte big-endian emission order + Action as JSON
//	history   pipeline → project → 8-byte big-endian sequence → HistoryEntry
//
// The state is one value: a snapshot of a few MB (1,000 items) is written
// whole each turn; see BenchmarkCommitTurn for what that costs.
//
// # Durability and fsync policy
//
// Every write (AppendInbox, Commit, Confirm) is one bbolt read-write
// transaction, and bbolt syncs the file (fdatasync on Linux) twice per
// commit: once after writing the data pages and once after writing the meta
// page that makes them visible (plus one when the file grows). A method that returned nil has therefore put
// its data on stable storage; a crash (kill -9, power loss) at any point
// leaves either the previous or the new transaction, never a mix. The cost
// is two syncs per call, so callers batch: AppendInbox takes every event
// read in one go, and one Commit covers a whole turn.
//
// Options.NoSync skips the syncs; it is for tests only (a process crash
// still loses nothing, a power loss may lose or corrupt everything). The
// free-page list is not written to disk (bbolt's NoFreelistSync): it is
// rebuilt by scanning the file on open, which saves a write per commit and
// means Open never needs to write to an existing file.
//
// # Opening
//
// Open first opens an existing file read-only (a shared lock) and checks it:
// the bbolt structure (page bounds, tx.Check), the store schema version, and
// that every stored value decodes. Only then does it reopen the file
// read-write under an exclusive lock; the state decoded by the check is what
// the first Load returns if nothing was written in between. A file locked by
// another process makes Open fail with ErrInUse after Options.Timeout. A new
// or empty file is initialised with schema version 1.
//
// Reading a damaged file can make bbolt panic or fault on its memory map
// (SIGBUS past the end of a truncated file). The check runs with
// debug.SetPanicOnFault in the caller's goroutine and turns either into
// ErrCorrupt; the pages are all touched there before bbolt's own consistency
// check walks them in goroutines of its own.
package store
