// Package gerrit is Seakeeper's adapter to Gerrit: its wire formats, the
// client of `gerrit stream-events` over SSH and the REST client.
//
// The event half reads the newline-delimited JSON that stream-events prints
// (Event, ParseEvent, Decoder) and turns each event Seakeeper cares about
// into the pipeline's TriggerEvent (Normalize). Parsing is tolerant of the
// variations real servers produce across versions and plugins: numbers sent
// as strings, `project` as a string or an object, `changeKey.id` or
// `changeKey.key`, missing fields. An unknown event type is skipped and
// counted; a malformed line is reported with its byte offset and never stops
// the stream. `dropped-output` is passed through so the stream client can
// ask the scheduler for a resync.
//
// The stream client (StreamConfig.Run) stays connected by itself: keepalives,
// reconnects with capped, jittered backoff, and a resync signal after every
// connect, dropped-output or buffer overflow. The REST client (NewClient)
// retries only what is safe to retry (5xx, 429, connection errors) within a
// per-call deadline, and classifies submit errors with Gerrit's own words.
//
// What this package must not do: decide anything about gating (which
// pipeline an event triggers, whether a change qualifies: that is the
// pipeline package's job), hold queue state, or retry a REST call past its
// deadline. Resyncing after a reconnect is the scheduler's job; the stream
// only says when one is needed.
package gerrit
