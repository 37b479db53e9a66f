package argo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ConfigSource reads a file of a project's refs/meta/config, returning its
// content and the commit of refs/meta/config it was read at. The Gerrit
// REST client's ProjectConfigFile fits.
type ConfigSource interface {
	ConfigFile(ctx context.Context, project, path string) (content []byte, sha string, err error)
}

// ConfigCacheOptions tunes a ConfigCache.
type ConfigCacheOptions struct {
	// Pipelines, when not nil, are the pipeline names a seakeeper.yaml may
	// have sections for.
	Pipelines []string
	// NotFound reports whether an error of the source means the file does
	// not exist (the project has no seakeeper.yaml): a config error, not a
	// failure to retry. Default: errors.Is(err, fs.ErrNotExist). For the
	// Gerrit client pass func(err error) bool { return errors.Is(err,
	// gerrit.ErrNotFound) }.
	NotFound func(error) bool
	// MaxAge bounds how long a file is used without asking the source
	// again, in case a ref-updated event of refs/meta/config was missed
	// (default 10m).
	MaxAge time.Duration
	// Clock defaults to the real one.
	Clock clock.PassiveClock
}

// ConfigCache holds the parsed seakeeper.yaml of each project, keyed by
// project and the commit of refs/meta/config it came from. It asks the
// source again after Invalidate (call it on ref-updated of
// refs/meta/config) or MaxAge; when the commit is unchanged the parsed
// config is reused. Parse errors are cached like configs. Safe for
// concurrent use; concurrent loads of one project share one request.
type ConfigCache struct {
	src  ConfigSource
	opts ConfigCacheOptions

	mu       sync.Mutex
	projects map[string]*configEntry
}

type configEntry struct {
	sha     string
	cfg     *ProjectConfig
	err     error // a *ConfigError
	fetched time.Time
	stale   bool
	loading chan struct{} // closed when a load in progress ends
}

// NewConfigCache returns a cache reading from src.
func NewConfigCache(src ConfigSource, opts ConfigCacheOptions) *ConfigCache {
	if opts.NotFound == nil {
		opts.NotFound = func(err error) bool { return errors.Is(err, fs.ErrNotExist) }
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 10 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &ConfigCache{src: src, opts: opts, projects: map[string]*configEntry{}}
}

// Invalidate makes the next Get of project ask the source again.
func (c *ConfigCache) Invalidate(project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.projects[project]; e != nil {
		e.stale = true
	}
}

// Get returns the project's config. A *ConfigError means the project's
// file is missing or broken; any other error is the source's (Gerrit
// unreachable, say) and worth retrying.
func (c *ConfigCache) Get(ctx context.Context, project string) (*ProjectConfig, error) {
	for {
		c.mu.Lock()
		e := c.projects[project]
		if e == nil {
			e = &configEntry{stale: true}
			c.projects[project] = e
		}
		if wait := e.loading; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		now := c.opts.Clock.Now()
		if !e.stale && now.Sub(e.fetched) < c.opts.MaxAge {
			cfg, err := e.cfg, e.err
			c.mu.Unlock()
			return cfg, err
		}
		done := make(chan struct{})
		e.loading = done

		prev := *e
		c.mu.Unlock()

		next, err := c.load(ctx, project, prev)

		c.mu.Lock()
		e.loading = nil
		close(done)
		if err == nil {
			e.sha, e.cfg, e.err, e.fetched, e.stale = next.sha, next.cfg, next.err, now, false
		}
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return next.cfg, next.err
	}
}

// load reads the file and parses it, unless it comes from the commit prev
// was parsed from. The entry it returns holds a config or a *ConfigError;
// the error is a failure to read.
func (c *ConfigCache) load(ctx context.Context, project string, prev configEntry) (configEntry, error) {
	data, sha, err := c.src.ConfigFile(ctx, project, ConfigFileName)
	switch {
	case err != nil && c.opts.NotFound(err):
		return configEntry{sha: sha, err: &ConfigError{Msg: fmt.Sprintf(
			"%s: not found on refs/meta/config of %s; project owners must add it there", ConfigFileName, project)}}, nil
	case err != nil:
		return configEntry{}, fmt.Errorf("reading %s of %s: %w", ConfigFileName, project, err)
	case sha != "" && sha == prev.sha && (prev.cfg != nil || prev.err != nil):
		return prev, nil
	}
	cfg, perr := ParseProjectConfig(ConfigFileName, sha, data, c.opts.Pipelines)
	return configEntry{sha: sha, cfg: cfg, err: perr}, nil
}
