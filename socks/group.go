package socks

import (
	"context"
	"io"
	"sync"
)

// group owns the goroutines and the closers of a Server or a Forwarder.
// Its close cancels ctx, closes everything tracked and waits for every
// goroutine counted with add or started with spawn; afterwards add, spawn
// and track refuse.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	next    uint64
	closers map[uint64]io.Closer
}

func newGroup() *group {
	ctx, cancel := context.WithCancel(context.Background())
	return &group{ctx: ctx, cancel: cancel, closers: make(map[uint64]io.Closer)}
}

// add counts a goroutine the caller runs (or is) until it calls done;
// false once closed.
func (g *group) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *group) done() { g.wg.Done() }

// spawn runs fn in a goroutine that close waits for; false (and fn does not
// run) once closed.
func (g *group) spawn(fn func()) bool {
	if !g.add() {
		return false
	}
	go func() {
		defer g.done()
		fn()
	}()
	return true
}

// track has close close c. Once closed it closes c at once and returns
// false. untrack forgets c (it does not close it).
func (g *group) track(c io.Closer) (untrack func(), ok bool) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		c.Close()
		return func() {}, false
	}
	id := g.next
	g.next++
	g.closers[id] = c
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.closers, id)
		g.mu.Unlock()
	}, true
}

func (g *group) closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// close cancels, closes what is tracked and waits for the goroutines. It
// may be called more than once, also concurrently: every call waits.
func (g *group) close() {
	g.mu.Lock()
	first := !g.closed
	g.closed = true
	closers := g.closers
	g.closers = nil
	g.mu.Unlock()
	if first {
		g.cancel()
		for _, c := range closers {
			c.Close()
		}
	}
	g.wg.Wait()
}
