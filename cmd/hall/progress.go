package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
)

// progressAfter is how long a step runs before hall says on standard
// error what it is doing: a cold hall build took 11 s and an enrollment up
// to 2.6 s in silence (issue 27). HALL_PROGRESS_AFTER (a Go duration)
// changes it; 0 announces every step.
func progressAfter() time.Duration {
	if v, ok := os.LookupEnv("HALL_PROGRESS_AFTER"); ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	return time.Second
}

// progress announces step on standard error once it has run for
// progressAfter, and its end when it was announced. Call the returned
// function when the step ends.
func progress(c *cli.Context, step string) (done func()) {
	var (
		mu        sync.Mutex
		announced bool
	)
	start := time.Now()
	announce := func() {
		mu.Lock()
		defer mu.Unlock()
		announced = true
		fmt.Fprintf(c.App.ErrWriter, "hall: %s…\n", step)
	}
	var timer *time.Timer
	if d := progressAfter(); d == 0 {
		announce()
	} else {
		timer = time.AfterFunc(d, announce)
	}
	return func() {
		if timer != nil {
			timer.Stop()
		}
		mu.Lock()
		defer mu.Unlock()
		if announced {
			fmt.Fprintf(c.App.ErrWriter, "hall: %s: done in %s\n", step, time.Since(start).Round(100*time.Millisecond))
		}
	}
}
