//! `watch`: apply, then follow the kernel (see [`crate::watch`]); each
//! re-apply is exactly an `apply` run under the lock.

use super::args::Cli;
use super::{Run, load, need_root, runtime};
use crate::watch::{self, Applied, Target, signals::Signals};

struct Watched<'a>(&'a Cli);

impl Target for Watched<'_> {
    fn apply(&mut self, stop: &mut dyn FnMut() -> bool) -> Result<Applied, String> {
        super::apply::locked(self.0, false, stop).map_err(|e| e.to_string())
    }
}

/// Runs until SIGTERM or SIGINT (exit 0). A bad config at start exits 2;
/// later, a bad config or a failing apply is logged and changes nothing.
pub fn run(cli: &Cli) -> Run {
    // A daemon: the one-shot arena's memory would never come back.
    crate::arena::seal();
    // Before anything else starts a thread: the mask must be inherited.
    let signals =
        Signals::install().map_err(|e| runtime(format!("cannot set up signal handling: {e}")))?;
    load(cli)?;
    need_root("watch")?;
    watch::run(&mut Watched(cli), signals, watch::Timing::default()).map_err(runtime)
}
