package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// HistoryEntry is an item that left its pipeline, as the scheduler describes
// it. The store keeps the newest Options.HistoryPerProject entries of each
// pipeline and project and reads nothing in them but Pipeline and Project.
type HistoryEntry struct {
	Pipeline string `json:"pipeline"`
	Project  string `json:"project"`
	Branch   string `json:"branch,omitempty"`
	Change   int    `json:"change,omitempty"` // 0 for a ref update
	Patchset int    `json:"patchset,omitempty"`
	Ref      string `json:"ref,omitempty"`
	Item     string `json:"item"`
	BuildSet string `json:"buildSet,omitempty"`
	// Outcome is how the item ended, in the scheduler's words (a
	// pipeline.Outcome such as "success" or "failure", or "dequeued").
	Outcome string `json:"outcome"`
	// URL links to the build (the Argo UI), if any.
	URL string `json:"url,omitempty"`
	// EnqueuedAt is when the item entered its queue; StartedAt and
	// FinishedAt bound its last workflow (FinishedAt is when it left when
	// it ran none).
	EnqueuedAt time.Time `json:"enqueuedAt"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

type encodedHistory struct {
	pipeline, project []byte
	json              []byte
}

func encodeHistory(hs []HistoryEntry) ([]encodedHistory, error) {
	out := make([]encodedHistory, 0, len(hs))
	for i := range hs {
		h := &hs[i]
		if h.Pipeline == "" || h.Project == "" {
			return nil, fmt.Errorf("history entry %d (item %q) needs a pipeline and a project", i, h.Item)
		}
		v, err := json.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("history entry %d (item %q) does not serialise: %w", i, h.Item, err)
		}
		out = append(out, encodedHistory{[]byte(h.Pipeline), []byte(h.Project), v})
	}
	return out, nil
}

// appendHistory adds the entries under history/pipeline/project, numbered
// by one sequence for the whole history, and prunes each project it touched
// to keep entries.
func appendHistory(b *bolt.Bucket, hs []encodedHistory, keep int) error {
	type key struct{ pipeline, project string }
	touched := map[key]*bolt.Bucket{}
	var order []key
	for _, h := range hs {
		pb, err := b.CreateBucketIfNotExists(h.pipeline)
		if err != nil {
			return fmt.Errorf("history bucket %q: %w", h.pipeline, err)
		}
		jb, err := pb.CreateBucketIfNotExists(h.project)
		if err != nil {
			return fmt.Errorf("history bucket %q/%q: %w", h.pipeline, h.project, err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := jb.Put(seqKey(seq), h.json); err != nil {
			return err
		}
		k := key{string(h.pipeline), string(h.project)}
		if touched[k] == nil {
			order = append(order, k)
		}
		touched[k] = jb
	}
	for _, k := range order {
		if err := prune(touched[k], keep); err != nil {
			return err
		}
	}
	return nil
}

// prune deletes the oldest keys of b beyond keep.
func prune(b *bolt.Bucket, keep int) error {
	n := 0
	c := b.Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		n++
	}
	var old [][]byte
	for k, _ := c.First(); k != nil && n > keep; k, _ = c.Next() {
		old = append(old, append([]byte(nil), k...))
		n--
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// History returns up to limit (all kept when limit <= 0) finished items of a
// pipeline and project, newest first (in the order they were committed).
func (s *Store) History(pipelineName, project string, limit int) ([]HistoryEntry, error) {
	var out []HistoryEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketHistory).Bucket([]byte(pipelineName))
		if pb == nil {
			return nil
		}
		jb := pb.Bucket([]byte(project))
		if jb == nil {
			return nil
		}
		c := jb.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var h HistoryEntry
			if err := json.Unmarshal(v, &h); err != nil {
				return corruptf(s.path, err, "history entry %x of %s/%s does not decode", k, pipelineName, project)
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}
