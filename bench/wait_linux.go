package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// waiter ends a wait at a deadline, to within tens of microseconds when
// the process is idle and when it is busy, without spinning. time.Sleep
// alone is not enough for S7: when every P is idle the runtime blocks in
// epoll_pwait, whose timeout is in whole milliseconds, so a 2.5 ms sleep
// ends after about 3.1 ms (0.6 ms late, 25% of the cost being modelled).
// A waiter parks the goroutine in a read of a timerfd armed for the
// deadline, like a network write waiting for its reply (the netpoller
// wakes it when the kernel's timer fires, to within its 50 µs slack), with
// a read deadline at the same time (the runtime's own timer, which a busy
// scheduler checks on every switch): whichever the runtime notices first
// ends the wait. The timerfds are kept on a free list, one per concurrent
// wait.
type waiter struct {
	free chan *os.File
}

// waiterFiles bounds the timerfds kept for reuse; more concurrent waits
// than this open and close their own.
const waiterFiles = 256

func newWaiter() *waiter { return &waiter{free: make(chan *os.File, waiterFiles)} }

// until returns at deadline, or a little after.
func (w *waiter) until(deadline time.Time) {
	d := time.Until(deadline)
	if d <= 0 {
		return
	}
	f := w.get()
	if f == nil {
		time.Sleep(d) // no timerfd: the runtime's timer alone
		return
	}
	// Arming resets the timerfd's expiry count, so an expiry left from
	// a wait its read deadline ended first does not end this one.
	err := unix.TimerfdSettime(int(f.Fd()), 0, &unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}, nil)
	if err == nil {
		err = f.SetReadDeadline(deadline)
	}
	if err != nil {
		f.Close()
		time.Sleep(time.Until(deadline))
		return
	}
	var buf [8]byte
	_, _ = f.Read(buf[:]) // the expiry count, or the read deadline's error: either ends the wait
	select {
	case w.free <- f:
	default:
		f.Close()
	}
}

func (w *waiter) get() *os.File {
	select {
	case f := <-w.free:
		return f
	default:
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	// A non-blocking descriptor: os.NewFile registers it with the
	// netpoller, so Read parks the goroutine, not the thread.
	return os.NewFile(uintptr(fd), "timerfd")
}

// close releases the timerfds kept for reuse.
func (w *waiter) close() {
	for {
		select {
		case f := <-w.free:
			f.Close()
		default:
			return
		}
	}
}
