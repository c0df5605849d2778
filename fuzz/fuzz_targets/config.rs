//! The config model, planner and renderers on arbitrary bytes: never panic;
//! a refused config always names file and line.
#![no_main]
use connroute::config::Config;
use connroute::facts::Facts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::parse(data, "/etc/config/connroute") {
        Ok(config) => {
            let p = connroute::plan::plan(&config, &Facts::default());
            let json = serde_json::to_vec(&p.ruleset).expect("ruleset serializes");
            let _ = connroute::json_text::pretty(&json);
            connroute::nft::text::render(&p.ruleset).expect("text render");
        }
        Err(e) => assert!(e.to_string().starts_with("/etc/config/connroute:")),
    }
});
