//! `connroute watch`: apply once, then follow the kernel. Blocks in `poll`
//! on rtnetlink (links, routes, ip rules), nftables notifications and
//! signals; when something relevant changed — a default route's next hop,
//! a link, connroute's own routes, rules or table deleted — it waits for a
//! short quiet spell (debounce), then re-plans and applies through the same
//! path as `connroute apply`. Its own changes are told apart and ignored;
//! repairs that keep being undone back off ([`guard`]).

pub mod guard;
pub mod signals;

use crate::apply::child;
use crate::apply::monitor::{Monitor, Reason};
use guard::{Guard, Limits};
use signals::{Signal, Signals};
use std::time::{Duration, Instant};

/// What one apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Something was installed or removed (the summary of the changes).
    Changed(String),
    /// Everything was already in place.
    Unchanged,
    /// Not run: the service is disabled or a stop request arrived.
    Skipped,
}

/// What the watcher drives: `connroute apply`'s work, one run per call.
pub trait Target {
    /// Takes the lock, then — unless `stop()` says a stop request came in
    /// meanwhile or the service is disabled — re-reads config and netifd
    /// state and applies.
    fn apply(&mut self, stop: &mut dyn FnMut() -> bool) -> Result<Applied, String>;
}

/// Timing of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Quiet time after the last relevant event before applying.
    pub debounce: Duration,
    /// Longest wait after the first event of a burst.
    pub max_delay: Duration,
    /// Backoff of repairs that keep being undone.
    pub limits: Limits,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            debounce: Duration::from_millis(300),
            max_delay: Duration::from_secs(1),
            limits: Limits::default(),
        }
    }
}

/// A burst of events waiting for its apply.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    why: Reason,
    /// Counts as a repair for the backoff (not at start or on SIGHUP).
    repair: bool,
}

impl Pending {
    fn due(&self, t: &Timing) -> Instant {
        (self.last + t.debounce).min(self.first + t.max_delay)
    }
}

/// The loop's state between polls.
struct Watch<'a> {
    timing: Timing,
    monitor: Monitor,
    signals: Signals,
    target: &'a mut dyn Target,
    guard: Guard,
    pending: Option<Pending>,
    /// After a failed apply: not before this time.
    retry_at: Option<Instant>,
    failures: u32,
    malformed: u32,
    malformed_logged: Option<Instant>,
}

/// Runs until SIGTERM/SIGINT. `signals` must have been installed before
/// any thread was started.
pub fn run(target: &mut dyn Target, signals: Signals, timing: Timing) -> Result<(), String> {
    let monitor = Monitor::open().map_err(|e| format!("cannot subscribe to rtnetlink: {e}"))?;
    let now = Instant::now();
    let mut w = Watch {
        timing,
        monitor,
        signals,
        target,
        guard: Guard::new(timing.limits),
        pending: Some(Pending {
            first: now,
            last: now,
            why: "start",
            repair: false,
        }),
        retry_at: None,
        failures: 0,
        malformed: 0,
        malformed_logged: None,
    };
    log::info!("watching links, routes, ip rules and nftables");
    // SIGTERM or SIGINT during an apply kills its helper at once (an nft
    // killed before the end of its input commits nothing; one that did
    // commit is reconciled by the next start).
    child::stop_when_readable(w.signals.stop_fd());
    w.run();
    child::stop_when_readable(-1);
    log::info!("watch: stopping");
    Ok(())
}

impl Watch<'_> {
    fn run(&mut self) {
        loop {
            let now = Instant::now();
            // Start and SIGHUP apply at once; repairs wait for the burst
            // to settle and for any backoff or failure delay.
            let wake = self.pending.map(|p| match p.repair {
                false if p.why != "retry" => now,
                _ => [
                    Some(p.due(&self.timing)),
                    self.guard.ready_at(),
                    self.retry_at,
                ]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(now),
            });
            if wake.is_some_and(|w| w <= now) {
                if !self.apply() {
                    return;
                }
                continue;
            }
            let timeout = wake.map_or(-1, |w| {
                let ms = w.saturating_duration_since(now).as_millis();
                i32::try_from(ms.max(1)).unwrap_or(i32::MAX)
            });
            if !self.wait(timeout) {
                return;
            }
        }
    }

    /// Blocks until input or `timeout_ms`; false when asked to stop.
    fn wait(&mut self, timeout_ms: i32) -> bool {
        let mut fds: Vec<libc::pollfd> = std::iter::once(self.signals.fd())
            .chain(self.monitor.fds())
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n <= 0 {
            return true; // timeout or EINTR: the loop re-computes
        }
        for s in self.signals.read() {
            match s {
                Signal::Stop => return false,
                Signal::Reload => self.event("SIGHUP", false),
            }
        }
        let d = self.monitor.drain(false);
        self.count_malformed(d.scan.malformed);
        if let Some(why) = d.scan.reason {
            self.event(why, true);
        }
        true
    }

    fn event(&mut self, why: Reason, repair: bool) {
        let now = Instant::now();
        // Something changed: a failed apply may succeed now (a link came
        // back); the failure delay only spaces retries without news.
        self.retry_at = None;
        match &mut self.pending {
            Some(p) => {
                p.last = now;
                if !repair {
                    p.why = why;
                    p.repair = false;
                }
            }
            None => {
                log::debug!("watch: {why}");
                self.pending = Some(Pending {
                    first: now,
                    last: now,
                    why,
                    repair,
                });
            }
        }
    }

    fn count_malformed(&mut self, n: u32) {
        self.malformed += n;
        if self.malformed == 0 {
            return;
        }
        let now = Instant::now();
        if self
            .malformed_logged
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            log::warn!(
                "ignored {} netlink notification(s) that did not parse",
                self.malformed
            );
            self.malformed = 0;
            self.malformed_logged = Some(now);
        }
    }

    /// One apply for the pending burst; false when asked to stop.
    fn apply(&mut self) -> bool {
        let Some(p) = self.pending.take() else {
            return true;
        };
        let mut stopping = false;
        let mut reload = false;
        let signals = &self.signals;
        let mut stop = || {
            for s in signals.read() {
                match s {
                    Signal::Stop => stopping = true,
                    Signal::Reload => reload = true,
                }
            }
            stopping
        };
        let started = Instant::now();
        let result = self.target.apply(&mut stop);
        // A stop that cut a helper short is still pending: take it.
        stop();
        if stopping {
            return false;
        }
        log::debug!(
            "watch: apply for \"{}\" took {} ms",
            p.why,
            started.elapsed().as_millis()
        );
        // What arrived meanwhile is mostly this apply's own doing.
        let d = self.monitor.drain(true);
        self.count_malformed(d.scan.malformed);
        let now = Instant::now();
        self.outcome(result, p.repair, now);
        if let Some(why) = d.scan.reason {
            self.event(why, true);
        }
        if reload {
            self.event("SIGHUP", false);
        }
        true
    }

    fn outcome(&mut self, result: Result<Applied, String>, repair: bool, now: Instant) {
        match result {
            Ok(Applied::Changed(what)) => {
                self.failures = 0;
                self.retry_at = None;
                if let Some(msg) = repair.then(|| self.guard.repaired(now, &what)).flatten() {
                    log::warn!("{msg}");
                }
            }
            Ok(Applied::Unchanged) => {
                self.failures = 0;
                self.retry_at = None;
                if let Some(msg) = self.guard.settled() {
                    log::info!("{msg}");
                }
            }
            Ok(Applied::Skipped) => {}
            Err(e) => {
                // The apply logged its error; try again later, less often
                // each time, in case the cause was passing.
                self.failures = self.failures.saturating_add(1);
                let delay = Duration::from_secs(1 << self.failures.min(6));
                log::warn!(
                    "watch: apply failed ({e}); retrying in {}s",
                    delay.as_secs()
                );
                self.retry_at = Some(now + delay);
                self.pending.get_or_insert(Pending {
                    first: now,
                    last: now,
                    why: "retry",
                    repair: false,
                });
            }
        }
    }
}
