//! The UCI reader on arbitrary bytes: never panics, and whatever parses
//! exports to a fixed point.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = connroute::uci::parse_lenient(data, "connroute");
    if let Ok(doc) = connroute::uci::parse(data, "connroute") {
        let once = doc.export();
        let again = connroute::uci::parse(&once, "connroute").expect("export parses back");
        assert_eq!(again.export(), once);
        let _ = doc.show(true);
    }
});
