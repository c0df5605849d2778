//! Reads netifd's interface state through the `ubus` command, bounded: a
//! hung netifd must not block every later hotplug run (the lock is held).

use crate::apply::child::{self, ChildError, Request};
use crate::config::Config;
use crate::facts::Facts;
use std::path::Path;
use std::time::Duration;

/// Default for `timeout` of [`dump`] (`--timeout` overrides it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every OpenWrt interface name the config refers to, sorted.
pub fn referenced(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config
        .enabled_gateways()
        .flat_map(|g| g.interfaces.iter().cloned())
        .chain(
            config
                .rules
                .iter()
                .flat_map(|r| r.in_interface.iter().cloned()),
        )
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `ubus -t SECS call network.interface dump`, killed at `timeout` (at
/// least 1 s: the whole deadline); ubus is asked to give up 1 s earlier
/// (`-t`, at least 1) so that it normally reports its own error first.
pub fn dump(ubus: &Path, timeout: Duration) -> Result<Facts, ChildError> {
    let whole = timeout.as_secs().max(1);
    let secs = whole.saturating_sub(1).max(1).to_string();
    let what = "reading netifd's interface state (`ubus call network.interface dump`)";
    let out = child::run(&Request {
        program: ubus,
        args: &["-t", &secs, "call", "network.interface", "dump"],
        input: b"",
        deadline: Duration::from_secs(whole),
        what,
    })?;
    Facts::from_dump(&String::from_utf8_lossy(&out.stdout)).map_err(|detail| {
        ChildError::BadOutput {
            program: ubus.display().to_string(),
            what: what.to_string(),
            detail,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::child::tests::script;

    #[test]
    fn ubus_gets_its_own_timeout_and_a_hung_ubus_is_killed() {
        let dir = std::env::temp_dir().join(format!("connroute-ubus-test-{}", std::process::id()));
        let ok = dir.join("ubus-ok");
        script(
            &ok,
            "#!/bin/sh\n[ \"$*\" = '-t 4 call network.interface dump' ] || exit 9\necho '{\"interface\":[]}'\n",
        );
        let hang = dir.join("ubus-hang");
        script(&hang, "#!/bin/sh\nexec sleep 60\n");
        let got = dump(&ok, Duration::from_secs(5));
        let started = std::time::Instant::now();
        let e = dump(&hang, Duration::ZERO).unwrap_err();
        let took = started.elapsed();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(got.is_ok(), "{:?}", got.err());
        assert!(matches!(e, ChildError::TimedOut { .. }), "{e}");
        // The timeout is the whole deadline, no grace on top.
        assert!(took < Duration::from_millis(1800), "{took:?}");
        assert!(
            e.to_string().ends_with("ubus-hang timed out after 1 s while reading netifd's interface state (`ubus call network.interface dump`)"),
            "{e}"
        );
    }
}
