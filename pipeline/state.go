package pipeline

import (
	"encoding/json"
	"fmt"
)

// Marshal serialises the state. The output is deterministic: the same state
// always gives the same bytes.
func (s *State) Marshal() ([]byte, error) { return json.Marshal(s) }

// UnmarshalState restores a state written by Marshal. A state of another
// schema version is an error, never silently reinterpreted.
func UnmarshalState(data []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("pipeline state: %w", err)
	}
	if s.Version != StateVersion {
		return nil, fmt.Errorf("pipeline state: schema version %d, this build reads version %d", s.Version, StateVersion)
	}
	for _, p := range s.Pipelines {
		if p == nil {
			return nil, fmt.Errorf("pipeline state: a pipeline entry is null")
		}
		for _, q := range p.Queues {
			if q == nil {
				return nil, fmt.Errorf("pipeline state: pipeline %s has a null queue", p.Name)
			}
			for _, it := range q.Items {
				if it == nil {
					return nil, fmt.Errorf("pipeline state: queue %s of pipeline %s has a null item", q.Name, p.Name)
				}
			}
		}
	}
	return &s, nil
}

// Clone returns a deep copy of the state (through its serialised form).
func (s *State) Clone() *State {
	data, err := s.Marshal()
	if err != nil {
		panic(fmt.Sprintf("pipeline: state does not serialise: %v", err))
	}
	c, err := UnmarshalState(data)
	if err != nil {
		panic(fmt.Sprintf("pipeline: state does not round-trip: %v", err))
	}
	return c
}
