// Package testproc runs a test binary again as a child process, for tests
// of systems that run as several processes (services, relays, a router),
// each of which the test can stop or kill on its own.
//
// The test binary's TestMain is Main: in a child it runs the program; in
// the test itself, the tests.
package testproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout is how long Start waits for a child to be ready.
const StartTimeout = 60 * time.Second

// argsEnv carries a child's arguments, separated by newlines.
const argsEnv = "TESTPROC_CHILD_ARGS"

// Main is the test binary's TestMain. In a child that a Group started, it
// runs main with the child's arguments, its context ending on SIGTERM or
// an interrupt, and exits: 0 when main returns nil, 1 otherwise. In the
// test itself it runs the tests.
func Main(m *testing.M, main func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	raw, ok := os.LookupEnv(argsEnv)
	if !ok {
		os.Exit(m.Run())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := main(ctx, strings.Split(raw, "\n"), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Group is the child processes of a test, by name.
type Group struct {
	mu    sync.Mutex
	procs []*Proc // in start order
}

// NewGroup returns an empty group. The test's cleanup stops the children
// that still run, all at once.
func NewGroup(t testing.TB) *Group {
	g := &Group{}
	t.Cleanup(func() {
		g.mu.Lock()
		procs := slices.Clone(g.procs)
		g.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(func() { p.Stop(false) })
		}
		wg.Wait()
	})
	return g
}

// Proc is a child process.
type Proc struct {
	Name string
	// Ready is the line of output that made Start return.
	Ready string
	args  []string
	ready string
	cmd   *exec.Cmd
	out   lockedBuffer
	done  chan struct{}
}

// Start runs the test binary as a child whose main (see Main) runs with
// args, and
// waits until a line of the child's output (stdout and stderr) contains
// ready. Start reports failures as errors, so that it may run on any
// goroutine.
func (g *Group) Start(name string, args []string, ready string) (*Proc, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), argsEnv+"="+strings.Join(args, "\n"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	p := &Proc{Name: name, args: args, ready: ready, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	readyLine := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.out.WriteString(line + "\n")
			if strings.Contains(line, ready) {
				select {
				case readyLine <- line:
				default: // already ready
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	select {
	case p.Ready = <-readyLine:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready:\n%s", name, p.Output())
	case <-time.After(StartTimeout):
		p.Stop(true)
		return nil, fmt.Errorf("%s was not ready within %s:\n%s", name, StartTimeout, p.Output())
	}
}

// Get returns the child last started under name, or nil.
func (g *Group) Get(name string) *Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range slices.Backward(g.procs) {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Crash kills the child name with SIGKILL, as a crash would, and starts
// it again with the same arguments.
func (g *Group) Crash(name string) (*Proc, error) {
	p := g.Get(name)
	if p == nil {
		return nil, fmt.Errorf("no child %s", name)
	}
	p.Stop(true)
	return g.Start(name, p.args, p.ready)
}

// Logs returns the output of the children, each under its name, for a
// failure message; a child that was started again appears twice.
func (g *Group) Logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for _, p := range g.procs {
		fmt.Fprintf(&b, "--- %s\n%s", p.Name, p.Output())
	}
	return b.String()
}

// Stop ends the child and waits for it to exit: SIGTERM, or SIGKILL when
// hard, as a crash would. A child still running 20s after SIGTERM is
// killed. Stopping a child that exited does nothing.
func (p *Proc) Stop(hard bool) {
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the child has exited, by itself or stopped.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the child wrote so far.
func (p *Proc) Output() string { return p.out.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
