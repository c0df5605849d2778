//! `apply`: make the system match the config.

use super::args::Cli;
use super::{
    Error, Run, foreign_refusal, live_facts, need_root, open_kernel, parse_config, read_config,
    read_ids, runtime, system, table_names_free,
};
use crate::apply::apply::{apply_with, prepare_if_absent};
use crate::apply::{error::ApplyError, kernel, kernel::fnv1a, lock::Lock};
use crate::config::Config;
use crate::ids::{self, Ids};
use crate::plan::plan;
use crate::service;
use crate::watch::Applied;
use std::time::Duration;

/// The ids and config a one-shot run (apply, hotplug) read before taking
/// the lock. After it, the files are read again and parsed again only when
/// they changed meanwhile: parsing a big config twice made an unchanged
/// apply of 1,000 rules a quarter slower.
pub(super) struct Early {
    ids: Ids,
    /// Length and FNV-1a hash of the config file's bytes.
    digest: (usize, u64),
    /// The validated config.
    pub(super) config: Config,
}

impl Early {
    /// Reads the ids and the config file and validates the config (a bad
    /// config fails at once, exit 2, without waiting for the lock).
    pub(super) fn read(cli: &Cli) -> Result<Early, Error> {
        let ids = read_ids(cli)?;
        let bytes = read_config(cli)?;
        let digest = digest(&bytes);
        let config = parse_config(cli, bytes, &ids)?;
        Ok(Early {
            ids,
            digest,
            config,
        })
    }
}

/// Length and hash of a config file's bytes.
fn digest(bytes: &[u8]) -> (usize, u64) {
    (bytes.len(), fnv1a(bytes))
}

/// Plans from the config and live facts, then applies under the lock.
pub fn run(cli: &Cli, force: bool) -> Run {
    let early = Early::read(cli)?;
    need_root("apply")?;
    run_early(cli, force, early)
}

/// [`run`] with the ids and config already read (and root checked). When
/// the table is absent, nft is started here, before the lock: it loads its
/// libraries while this run waits for the lock, reads the files again and
/// gathers the facts. Unfed, it commits nothing; a run that turns out not
/// to need it (another run created the table meanwhile, the config changed
/// under the lock) kills it.
pub(super) fn run_early(cli: &Cli, force: bool, early: Early) -> Run {
    let mut k = open_kernel(cli)?;
    prepare_if_absent(&mut k, early.config.globals.enabled);
    locked_from(cli, force, &mut || false, Some((early, k))).map(drop)
}

/// Takes the lock, then — unless `stop()` reports a stop request or the
/// init script (`--init-script`) is disabled — reads the config, the
/// recorded allocations and netifd state as they are now, plans and
/// applies. Checking after the lock means a run that waited while the
/// package was being removed installs nothing.
pub(super) fn locked(
    cli: &Cli,
    force: bool,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Applied, Error> {
    locked_from(cli, force, stop, None)
}

/// [`locked`], reusing what was read before the lock if it is still
/// current, and the kernel connection opened then. With `early` (a one-shot
/// run: the process exits next), the config, facts and plan are not freed
/// object by object: the kernel takes the memory back at exit at once
/// (freeing them took 17 ms of an unchanged 250-gateway apply).
fn locked_from(
    cli: &Cli,
    force: bool,
    stop: &mut dyn FnMut() -> bool,
    early: Option<(Early, kernel::System)>,
) -> Result<Applied, Error> {
    let wait = Duration::from_secs(cli.lock_timeout);
    let Some(_lock) = Lock::acquire_unless(&cli.lock, wait, stop).map_err(runtime)? else {
        return Ok(Applied::Skipped);
    };
    if stop() {
        return Ok(Applied::Skipped);
    }
    if let Some(init) = &cli.init_script {
        if !service::enabled(init, Duration::from_secs(10)) {
            log::info!("{} is disabled: nothing applied", init.display());
            return Ok(Applied::Skipped);
        }
    }
    let once = early.is_some();
    let previous = read_ids(cli)?;
    let bytes = read_config(cli)?;
    let read = digest(&bytes);
    let (early, kernel) = early.unzip();
    let (config, hinted) = match early {
        Some(e) if e.ids == previous && e.digest == read => {
            drop(bytes);
            (e.config, true)
        }
        _ => (parse_config(cli, bytes, &previous)?, false),
    };
    let mut k = match kernel {
        Some(k) => k,
        None => open_kernel(cli)?,
    };
    // Again only for a config other than the one the early hint was for.
    if !hinted {
        prepare_if_absent(&mut k, config.globals.enabled);
    }
    let mut f = live_facts(cli, &config, &mut k, true)?;
    let mut p = plan(&config, &f);
    // The model is not needed while applying (2.3 MB for 10,000 rules, at
    // the peak beside the plan and the incremental diff): a re-plan reads
    // it from the file again, and finds it as it was.
    let ids = config.ids.clone();
    drop(config);
    table_names_free(cli, &p)?;
    for g in p.gateways.iter().filter(|g| !g.active) {
        // A device missing or down was warned about when it was found.
        let device = |(d, why): (&String, &String)| g.reason == format!("device {d} {why}");
        if !f.unusable_devices.iter().any(device) {
            log::info!("gateway {} inactive: {}", g.name, g.reason);
        }
    }
    // New allocations are recorded before anything changes: a run that
    // fails or is killed after nft's commit leaves them in use, and an
    // unrecorded one would be handed to another gateway by a later edit.
    // Once per run (a re-plan keeps the config and the ids).
    let mut recorded: Option<Ids> = None;
    let mut before_change = || record_new_ids(cli, &previous, &ids, &mut recorded);
    // A gateway whose next hop the kernel refuses becomes inactive; the
    // run is then applied without it (once per gateway: bounded).
    let result = loop {
        match apply_with(&mut k, &p, &system(cli), force, &mut before_change) {
            Err(ApplyError::Unreachable { gateway, why }) if !f.refused.contains_key(&gateway) => {
                log::warn!("gateway {gateway} inactive: {why}");
                f.refused.insert(gateway, why);
                drop(p);
                p = plan(&reread(cli, &previous, read)?, &f);
            }
            r => break r,
        }
    };
    // An error is logged by whoever reports it (main, or watch's retry).
    let report = result.map_err(|e| match e {
        ApplyError::Foreign(routes) => {
            foreign_refusal(cli, &p, &routes, "refusing to apply, nothing changed")
        }
        e => e.into(),
    })?;
    log::info!("apply: {}", report.summary());
    record_ids(cli, recorded.as_ref().unwrap_or(&previous), &ids)?;
    let applied = if report.changes.is_empty() {
        Applied::Unchanged
    } else {
        Applied::Changed(report.summary())
    };
    if once {
        std::mem::forget((f, p));
    }
    Ok(applied)
}

/// The config as it was planned from, read again for a re-plan: the same
/// bytes and recorded ids give the same model (its warnings were logged
/// the first time). A file changed meanwhile is an error: the plan the
/// kernel refused part of is not mixed with another config (the change
/// itself is applied by the run its reload starts).
fn reread(cli: &Cli, ids: &Ids, was: (usize, u64)) -> Result<Config, Error> {
    // Read and valid a moment ago: a failure now is a race (exit 1), not
    // bad input.
    let bytes = read_config(cli).map_err(|e| runtime(format!("{e}: not re-planned")))?;
    if was != digest(&bytes) {
        return Err(runtime(format!(
            "{} changed while it was applied: not re-planned",
            cli.config.display()
        )));
    }
    let name = cli.config.display().to_string();
    let invalid = |e: crate::config::ConfigError| Error::Config(e.to_string());
    let doc = Config::document(&bytes, &name).map_err(invalid)?;
    drop(bytes);
    Config::from_document_with_ids(&doc, &name, ids).map_err(invalid)
}

/// Before the first change: writes the allocations when `now` has a
/// gateway `previous` does not record ([`ids::durable`]), keeping what it
/// wrote in `recorded`; none new, the file is not touched (it need not be
/// writable). Once per run.
fn record_new_ids(
    cli: &Cli,
    previous: &Ids,
    now: &Ids,
    recorded: &mut Option<Ids>,
) -> Result<(), String> {
    if recorded.is_some() {
        return Ok(());
    }
    let Some(d) = ids::durable(previous, now) else {
        return Ok(());
    };
    ids::write(&cli.ids, &d).map_err(|e| format!("cannot record the new allocations: {e}"))?;
    log::debug!("recorded new allocations in {}", cli.ids.display());
    *recorded = Some(d);
    Ok(())
}

/// Writes the allocations after a successful apply, only when they changed
/// from `on_disk`. Failing is an error only while a gateway has no record;
/// retired lines and a recorded gateway's new explicit values (the option
/// holds them) can wait for the next run.
fn record_ids(cli: &Cli, on_disk: &Ids, now: &Ids) -> Run {
    if on_disk == now {
        return Ok(());
    }
    match ids::write(&cli.ids, now) {
        Ok(()) => log::debug!("recorded allocations in {}", cli.ids.display()),
        Err(e) if ids::durable(on_disk, now).is_none() => {
            log::warn!("applied; the ids file is left as it was: {e}");
        }
        Err(e) => {
            return Err(runtime(format!(
                "applied, but the allocations are not recorded: {e}"
            )));
        }
    }
    Ok(())
}
