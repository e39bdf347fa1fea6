//go:build !linux

package bench

import "time"

// cpuTimes is only implemented on Linux.
func cpuTimes() (host, self time.Duration, ok bool) { return 0, 0, false }
