//! How a stop request reaches the worker's threads. A signal handler may do
//! little more than set a flag, but the threads that wait on channels (a
//! lane waiting for its rate limit or out a `Retry-After`, the reader waiting
//! for room in its window or for an unreachable queue) must wake at once,
//! not on their next look at the flag. So a stop also disconnects a channel
//! that each of them puts in its `select!`.
//!
//! Like `fd`: the first SIGINT or SIGTERM asks the loop to finish what it
//! has in hand; a second one exits 130 at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, select};

/// A stop request, shared by every thread of a worker. Cloning shares it.
#[derive(Clone)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    /// Never carries a message; disconnected once a stop is requested.
    woken: Receiver<()>,
    /// Dropped (taken) to disconnect `woken`.
    waker: Arc<Mutex<Option<Sender<()>>>>,
}

impl Default for Stop {
    fn default() -> Stop {
        let (waker, woken) = crossbeam_channel::bounded(0);
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            woken,
            waker: Arc::new(Mutex::new(Some(waker))),
        }
    }
}

impl Stop {
    /// Requests the stop: every thread waiting through [`Stop::channel`]
    /// wakes.
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// For a `select!` arm: it fires (disconnected) once a stop is requested,
    /// and never before.
    pub fn channel(&self) -> &Receiver<()> {
        &self.woken
    }

    /// Waits until `deadline`, or less when a stop is requested first.
    /// Returns whether a stop was requested.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        select! {
            recv(self.woken) -> _ => {}
            recv(crossbeam_channel::at(deadline)) -> _ => {}
        }
        self.requested()
    }

    /// Requests the stop on the first of `signals`; with a stop already
    /// requested, a second one exits 130 at once, in the signal handler.
    pub fn on_signals(&self, signals: &[libc::c_int]) -> std::io::Result<()> {
        for &signal in signals {
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&self.flag))?;
            signal_hook::flag::register(signal, Arc::clone(&self.flag))?;
        }
        // The handler only set the flag; this thread wakes the waiters.
        let mut incoming = signal_hook::iterator::Signals::new(signals)?;
        let stop = self.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if incoming.forever().next().is_some() {
                    stop.request();
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_request_wakes_a_waiter_long_before_its_deadline() {
        let stop = Stop::default();
        let waiter = {
            let stop = stop.clone();
            std::thread::spawn(move || stop.wait_until(Instant::now() + Duration::from_secs(3600)))
        };
        assert!(!stop.requested());
        stop.request();
        assert!(
            waiter.join().unwrap(),
            "woken by the stop, not the deadline"
        );
        assert!(
            stop.channel().recv().is_err(),
            "the channel stays disconnected"
        );
    }

    #[test]
    fn without_a_request_a_wait_ends_at_its_deadline() {
        let stop = Stop::default();
        assert!(!stop.wait_until(Instant::now()));
        assert_eq!(
            stop.channel().try_recv(),
            Err(crossbeam_channel::TryRecvError::Empty),
            "still connected: nothing wakes a waiter"
        );
    }
}
