//go:build unix

package apispec

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process has used, user and system: the
// benchmarks report it per operation, which other processes sharing the
// machine do not inflate as they do the elapsed time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
