package argo

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestConfigCache(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{}
	src.set("org/app", "sha1", templateRefConfig)
	clk := clocktesting.NewFakePassiveClock(t0)
	c := NewConfigCache(src, ConfigCacheOptions{Clock: clk, MaxAge: time.Hour})

	first, err := c.Get(ctx, "org/app")
	if err != nil || first.SHA != "sha1" {
		t.Fatalf("Get = %+v, %v", first, err)
	}
	if again, _ := c.Get(ctx, "org/app"); again != first || src.readCount() != 1 {
		t.Errorf("a second Get read again (%d reads)", src.readCount())
	}
	// Invalidated but unchanged: read again, parse reused.
	c.Invalidate("org/app")
	if again, _ := c.Get(ctx, "org/app"); again != first || src.readCount() != 2 {
		t.Errorf("same sha: got a new parse or no read (%d reads)", src.readCount())
	}
	// A new commit of refs/meta/config is picked up after Invalidate.
	src.set("org/app", "sha2", "workflowTemplateRef: {name: ci2}\n")
	if again, _ := c.Get(ctx, "org/app"); again != first {
		t.Error("changed without Invalidate")
	}
	c.Invalidate("org/app")
	second, err := c.Get(ctx, "org/app")
	if err != nil || second.SHA != "sha2" {
		t.Fatalf("after invalidate: %+v, %v", second, err)
	}
	if w, _ := second.For("gate"); w.TemplateRef.Name != "ci2" {
		t.Errorf("template %+v", w.TemplateRef)
	}
	// Or after MaxAge, in case the ref-updated event was lost.
	src.set("org/app", "sha3", "workflowTemplateRef: {name: ci3}\n")
	clk.SetTime(t0.Add(2 * time.Hour))
	if third, _ := c.Get(ctx, "org/app"); third.SHA != "sha3" {
		t.Errorf("after MaxAge: %s", third.SHA)
	}

	// A broken file is a ConfigError, cached like a config.
	src.set("org/bad", "b1", "timeout: soon\n")
	reads := src.readCount()
	for range 2 {
		_, err := c.Get(ctx, "org/bad")
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Msg, "seakeeper.yaml:1: timeout: expected a duration") {
			t.Fatalf("broken: %v", err)
		}
	}
	if src.readCount() != reads+1 {
		t.Errorf("broken file read %d times", src.readCount()-reads)
	}
	// A missing file too.
	if _, err := c.Get(ctx, "org/none"); !strings.Contains(err.Error(), "not found on refs/meta/config of org/none") {
		t.Errorf("missing: %v", err)
	}
	// A failure to read is not a ConfigError, and is not cached.
	src.err = errors.New("gerrit: 503")
	c.Invalidate("org/app")
	_, err = c.Get(ctx, "org/app")
	var ce *ConfigError
	if err == nil || errors.As(err, &ce) {
		t.Errorf("read failure: %v", err)
	}
	src.err = nil
	if got, err := c.Get(ctx, "org/app"); err != nil || got.SHA != "sha3" {
		t.Errorf("after the failure: %v", err)
	}
}

func TestConfigCacheNotFoundHook(t *testing.T) {
	errGone := errors.New("404")
	src := &fakeSource{err: errGone}
	c := NewConfigCache(src, ConfigCacheOptions{NotFound: func(err error) bool { return errors.Is(err, errGone) }})
	_, err := c.Get(context.Background(), "p")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("err = %v, want a ConfigError", err)
	}
}

// blockingSource blocks reads until released, to check that concurrent
// Gets share one read.
type blockingSource struct {
	fakeSource
	release chan struct{}
}

func (b *blockingSource) ConfigFile(ctx context.Context, project, path string) ([]byte, string, error) {
	<-b.release
	return b.fakeSource.ConfigFile(ctx, project, path)
}

func TestConfigCacheSharesLoads(t *testing.T) {
	src := &blockingSource{release: make(chan struct{})}
	src.set("p", "s", templateRefConfig)
	c := NewConfigCache(src, ConfigCacheOptions{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), "p"); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	close(src.release)
	wg.Wait()
	if n := src.readCount(); n != 1 {
		t.Errorf("%d reads for concurrent Gets", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Invalidate("p")
	src.release = make(chan struct{}) // the next load blocks; a waiter gives up with its context
	go func() { _, _ = c.Get(context.Background(), "p") }()
	time.Sleep(10 * time.Millisecond)
	if _, err := c.Get(ctx, "p"); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting Get with a cancelled context: %v", err)
	}
	close(src.release)
}
