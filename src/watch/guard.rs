//! Never fight another tool: when the same repair keeps being undone, wait
//! longer and longer before the next one, and say so once per step.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many repairs within `window` are tolerated before backing off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// More repairs of the same thing than this within `window` start a
    /// backoff.
    pub repairs: usize,
    /// The window repairs are counted in.
    pub window: Duration,
    /// The first backoff delay; each further step doubles it.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            repairs: 5,
            window: Duration::from_secs(60),
            first: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

/// Repair history and the current backoff step.
#[derive(Debug)]
pub struct Guard {
    limits: Limits,
    repairs: VecDeque<(Instant, String)>,
    step: u32,
    until: Option<Instant>,
}

impl Guard {
    /// A guard with no history.
    pub fn new(limits: Limits) -> Guard {
        Guard {
            limits,
            repairs: VecDeque::new(),
            step: 0,
            until: None,
        }
    }

    /// The earliest time the next apply may run, while backing off.
    pub fn ready_at(&self) -> Option<Instant> {
        self.until
    }

    /// The current backoff delay, for tests and logs.
    fn delay(&self) -> Duration {
        let factor = 1u32 << self.step.saturating_sub(1).min(16);
        self.limits
            .first
            .saturating_mul(factor)
            .min(self.limits.max)
    }

    /// An apply repaired `what` (its change summary) after someone else's
    /// change. Returns the log line when a (further) backoff step starts:
    /// the same repair more than the limit within the window, or any
    /// repair while backing off. A quiet window ends the backoff.
    pub fn repaired(&mut self, now: Instant, what: &str) -> Option<String> {
        if self
            .repairs
            .back()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.limits.window)
        {
            self.step = 0;
            self.until = None;
        }
        while self
            .repairs
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.limits.window)
        {
            self.repairs.pop_front();
        }
        self.repairs.push_back((now, what.to_string()));
        let same = self.repairs.iter().filter(|(_, w)| w == what).count();
        if self.step == 0 && same <= self.limits.repairs {
            return None;
        }
        self.step += 1;
        let delay = self.delay();
        self.until = Some(now + delay);
        Some(format!(
            "something keeps undoing connroute's state ({same}× \"{what}\" within {}s); \
             backing off: next repair in {}s at the earliest",
            self.limits.window.as_secs(),
            delay.as_secs()
        ))
    }

    /// An apply found everything in place: the other tool stopped. Returns
    /// the log line when this ends a backoff.
    pub fn settled(&mut self) -> Option<String> {
        self.repairs.clear();
        self.until = None;
        let was = std::mem::take(&mut self.step);
        (was > 0).then(|| "state holds again; backoff ended".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn tolerates_a_few_repairs_then_doubles_the_delay_up_to_the_max() {
        let mut g = Guard::new(Limits {
            repairs: 3,
            window: secs(60),
            first: secs(2),
            max: secs(10),
        });
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(g.repaired(t0 + secs(i), "table").is_none());
            assert!(g.repaired(t0 + secs(i), &format!("route {i}")).is_none());
        }
        assert!(g.ready_at().is_none());
        let mut delays = Vec::new();
        for i in 3..8 {
            let msg = g.repaired(t0 + secs(i), "table").expect("a backoff step");
            assert!(msg.contains("backing off"), "{msg}");
            delays.push(g.ready_at().unwrap() - (t0 + secs(i)));
        }
        assert_eq!(delays, [secs(2), secs(4), secs(8), secs(10), secs(10)]);
        assert!(g.settled().is_some());
        assert!(g.ready_at().is_none());
        assert!(g.settled().is_none(), "ending twice logs once");
    }

    #[test]
    fn old_repairs_leave_the_window() {
        let mut g = Guard::new(Limits {
            repairs: 2,
            window: secs(10),
            ..Limits::default()
        });
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(g.repaired(t0 + secs(i * 20), "t").is_none(), "repair {i}");
        }
        for i in 0..3 {
            g.repaired(t0 + secs(300 + i), "t");
        }
        assert!(g.ready_at().is_some(), "backing off");
        assert!(
            g.repaired(t0 + secs(400), "t").is_none(),
            "a quiet window ends it"
        );
        assert!(g.ready_at().is_none());
    }
}
