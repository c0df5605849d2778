//! The incremental diff on small batches shaped like the builder's: the
//! exact commands for each kind of change, and `None` for what it must not
//! attempt.

use super::*;

const T: &str = r#""family":"inet","table":"connroute""#;

fn table() -> Vec<String> {
    let t = r#"{"table":{"family":"inet","name":"connroute"}}"#;
    vec![
        format!(r#"{{"add":{t}}}"#),
        format!(r#"{{"delete":{t}}}"#),
        format!(r#"{{"add":{t}}}"#),
    ]
}

fn counter(n: &str) -> String {
    format!(r#"{{"add":{{"counter":{{{T},"name":"{n}","bytes":null}}}}}}"#)
}

fn chain(n: &str) -> String {
    format!(r#"{{"add":{{"chain":{{{T},"name":"{n}"}}}}}}"#)
}

fn set(n: &str, elems: &str) -> String {
    format!(r#"{{"add":{{"set":{{{T},"name":"{n}","type":"inet_service","elem":[{elems}]}}}}}}"#)
}

/// A rule of `c` counting into `rule_R` and going to `target`.
fn rule(c: &str, r: &str, target: &str) -> String {
    format!(
        r#"{{"add":{{"rule":{{{T},"chain":"{c}","expr":[{{"counter":"rule_{r}"}},{{"goto":{{"target":"{target}"}}}}],"comment":"{r}"}}}}}}"#
    )
}

fn fp_rule(fp: &str, gws: &[&str]) -> String {
    let fp = format!("{:0>16}", fp);
    format!(
        r#"{{"add":{{"rule":{{{T},"chain":"prerouting","expr":[{{"vmap":"{}"}}],"comment":"connroute restore fp={fp}"}}}}}}"#,
        gws.join(",")
    )
}

/// A batch: gateways (restore chain with one rule, counter), classify
/// rules (each with its counter, going to the first gateway), named sets.
fn batch(gws: &[&str], rules: &[&str], sets: &[(&str, &str)], fp: &str) -> Vec<String> {
    let mut b = table();
    b.extend(gws.iter().map(|g| counter(&format!("gw_{g}"))));
    b.extend(rules.iter().map(|r| counter(&format!("rule_{r}"))));
    b.push(chain("prerouting"));
    for g in gws {
        b.push(chain(&format!("restore_{g}")));
        b.push(rule(&format!("restore_{g}"), g, "x"));
    }
    b.push(chain("classify"));
    b.extend(sets.iter().map(|(n, e)| set(n, e)));
    b.extend(
        rules
            .iter()
            .map(|r| rule("classify", r, &format!("pin_{}", gws[0]))),
    );
    b.push(fp_rule(fp, gws));
    b.push(format!(
        r#"{{"add":{{"rule":{{{T},"chain":"prerouting","expr":[{{"jump":{{"target":"classify"}}}}]}}}}}}"#
    ));
    b
}

/// Live handles for a batch's rules: 100, 101, … in batch order.
fn live(b: &[String]) -> Vec<(String, u64)> {
    let head = r#"{"add":{"rule":{"family":"inet","table":"connroute","chain":""#;
    let chains = b.iter().filter_map(|o| {
        let rest = o.strip_prefix(head)?;
        Some(rest[..rest.find('"')?].to_string())
    });
    chains.zip(100..).collect()
}

/// `rule` with `{"OP":` and the handle after the chain.
fn at(op: &str, rule: &str, chain: &str, h: u64) -> String {
    let c = format!(r#""chain":"{chain}","#);
    rule.replacen(r#"{"add":"#, &format!(r#"{{"{op}":"#), 1)
        .replacen(&c, &format!("{c}\"handle\":{h},"), 1)
}

/// `rule` put in place of handle `h` of `chain`: inserted before it, the
/// old one deleted (nft before 1.1.0 aborts on some `replace`s).
fn swap(rule: &str, chain: &str, h: u64) -> [String; 2] {
    let del = format!(r#"{{"delete":{{"rule":{{{T},"chain":"{chain}","handle":{h}}}}}}}"#);
    [at("insert", rule, chain, h), del]
}

/// An update's command texts and what it touches.
struct Texts {
    commands: Vec<String>,
    touched: Touched,
}

fn update(a: &[String], b: &[String]) -> Texts {
    let u = diff(a, b, &live(a)).expect("an incremental update");
    Texts {
        commands: u.texts(b),
        touched: u.touched,
    }
}

const GW: &[&str] = &["g1"];

// Handles of batch(GW, [a, b, c], [], _): restore_g1 100, classify a 101,
// b 102, c 103, prerouting fp 104, jump 105.

#[test]
fn rule_added_at_the_start_is_inserted_before_the_first() {
    let a = batch(GW, &["a", "b", "c"], &[], "1");
    let b = batch(GW, &["n", "a", "b", "c"], &[], "2");
    let u = update(&a, &b);
    // Add-only: the fingerprint rule keeps the older comment (refreshing it
    // would delete a rule, and nft would wait for an RCU grace period).
    let want = vec![
        counter("rule_n"),
        at("insert", &rule("classify", "n", "pin_g1"), "classify", 101),
    ];
    assert_eq!(u.commands, want);
    assert_eq!(
        u.commands[1],
        r#"{"insert":{"rule":{"family":"inet","table":"connroute","chain":"classify","handle":101,"expr":[{"counter":"rule_n"},{"goto":{"target":"pin_g1"}}],"comment":"n"}}}"#
    );
    assert_eq!(u.touched.to_string(), "1 rule added, 1 counter added");
    assert_eq!(u.touched.objects(), 2);
    assert!(u.touched.add_only());
    assert!(u.commands.iter().all(|c| !c.contains("delete")));
}

#[test]
fn rule_added_in_the_middle_is_inserted_before_the_next() {
    let a = batch(GW, &["a", "b", "c"], &[], "1");
    let b = batch(GW, &["a", "n", "b", "c"], &[], "2");
    let u = update(&a, &b);
    assert_eq!(
        u.commands[1],
        at("insert", &rule("classify", "n", "pin_g1"), "classify", 102)
    );
    assert_eq!(u.commands.len(), 2);
}

#[test]
fn rule_added_at_the_end_is_appended() {
    let a = batch(GW, &["a", "b", "c"], &[], "1");
    let b = batch(GW, &["a", "b", "c", "n", "m"], &[], "2");
    let u = update(&a, &b);
    assert_eq!(
        u.commands[2..],
        [
            rule("classify", "n", "pin_g1"),
            rule("classify", "m", "pin_g1")
        ]
    );
    assert_eq!(u.touched.rules_added, 2);
}

#[test]
fn an_update_that_destroys_refreshes_the_fingerprint() {
    // A rule added and another removed: the batch deletes anyway, so the
    // fingerprint rule is replaced too and the table names the new plan.
    let a = batch(GW, &["a", "b", "c"], &[], "1");
    let b = batch(GW, &["n", "a", "c"], &[], "2");
    let u = update(&a, &b);
    let [ins, del] = swap(&fp_rule("2", GW), "prerouting", 104);
    assert!(
        u.commands.contains(&ins) && u.commands.contains(&del),
        "{:?}",
        u.commands
    );
    assert!(!u.touched.add_only());
    // Only a counter added: no rule count would show the commit, so it
    // refreshes the fingerprint too.
    let c = batch(GW, &["a", "b", "c"], &[], "3");
    let mut c2 = c.clone();
    c2.insert(4, counter("extra"));
    let u = update(&a, &c2);
    assert!(!u.touched.add_only());
    assert_eq!(u.touched.rules_replaced, 1, "{:?}", u.commands);
}

#[test]
fn rule_removed_is_deleted_by_handle_before_its_counter() {
    let a = batch(GW, &["a", "b", "c"], &[], "1");
    let b = batch(GW, &["a", "c"], &[], "2");
    let u = update(&a, &b);
    let del = r#"{"delete":{"rule":{"family":"inet","table":"connroute","chain":"classify","handle":102}}}"#;
    let del_counter =
        r#"{"delete":{"counter":{"family":"inet","table":"connroute","name":"rule_b"}}}"#;
    let mut want = swap(&fp_rule("2", GW), "prerouting", 104).to_vec();
    want.extend([del.to_string(), del_counter.to_string()]);
    assert_eq!(u.commands, want);
}

#[test]
fn rule_changed_is_inserted_before_the_old_one_then_deleted() {
    let a = batch(GW, &["a", "b", "c"], &[], "1");
    let mut b = batch(GW, &["a", "b", "c"], &[], "2");
    let i = b
        .iter()
        .position(|o| o.contains(r#""comment":"b""#))
        .unwrap();
    b[i] = b[i].replace("pin_g1", "pin_g2").replace("rule_b", "rule_a");
    let u = update(&a, &b);
    assert_eq!(u.commands[2..], swap(&b[i], "classify", 102));
    assert!(u.commands.iter().all(|c| !c.starts_with(r#"{"replace""#)));
    // The counter rule_b is still declared: only the two rules change.
    assert_eq!(u.touched.to_string(), "2 rules replaced");
}

#[test]
fn gateway_added_then_removed() {
    let a = batch(GW, &["a"], &[], "1");
    let b = batch(&["g1", "g2"], &["a"], &[], "2");
    let u = update(&a, &b);
    let mut want = vec![counter("gw_g2"), chain("restore_g2")];
    want.extend(swap(&fp_rule("2", &["g1", "g2"]), "prerouting", 102));
    want.push(rule("restore_g2", "g2", "x"));
    assert_eq!(u.commands, want);
    let back = update(&b, &a);
    let named = |op: &str, k: &str, n: &str| {
        format!(r#"{{"{op}":{{"{k}":{{"family":"inet","table":"connroute","name":"{n}"}}}}}}"#)
    };
    let [ins, del] = swap(&fp_rule("1", GW), "prerouting", 103);
    assert_eq!(
        back.commands,
        [
            ins,
            del,
            named("flush", "chain", "restore_g2"),
            named("delete", "chain", "restore_g2"),
            named("delete", "counter", "gw_g2"),
        ]
    );
    assert_eq!(
        back.touched.to_string(),
        "1 rule replaced, 1 chain removed, 1 counter removed"
    );
}

#[test]
fn named_set_changed_is_flushed_and_refilled() {
    let a = batch(GW, &["a"], &[("s", "1,2")], "1");
    let b = batch(GW, &["a"], &[("s", "1,3")], "2");
    let u = update(&a, &b);
    assert_eq!(
        u.commands,
        [
            r#"{"flush":{"set":{"family":"inet","table":"connroute","name":"s"}}}"#,
            r#"{"add":{"element":{"family":"inet","table":"connroute","name":"s","elem":[1,3]}}}"#,
            &swap(&fp_rule("2", GW), "prerouting", 102)[0],
            &swap(&fp_rule("2", GW), "prerouting", 102)[1],
        ]
    );
    assert_eq!(u.touched.sets_changed, 1);
    // A set added, and one removed after the rules.
    let c = batch(GW, &["a"], &[("s", "1,3"), ("t", "4")], "3");
    assert_eq!(update(&b, &c).commands[0], set("t", "4"));
    let d = update(&c, &b);
    assert_eq!(
        d.commands.last().unwrap(),
        r#"{"delete":{"set":{"family":"inet","table":"connroute","name":"t"}}}"#
    );
}

#[test]
fn nothing_changed_and_fingerprint_only() {
    let a = batch(GW, &["a", "b"], &[], "1");
    assert_eq!(update(&a, &a).commands, Vec::<String>::new());
    assert_eq!(update(&a, &a).touched.to_string(), "nothing");
    // Only the fingerprint differs: the comment is refreshed.
    let b = batch(GW, &["a", "b"], &[], "2");
    let u = update(&a, &b);
    assert_eq!(u.commands, swap(&fp_rule("2", GW), "prerouting", 103));
    assert_eq!(u.touched.to_string(), "1 rule replaced");
}

#[test]
fn uncertain_shapes_give_none() {
    let a = batch(GW, &["a", "b"], &[], "1");
    let b = batch(GW, &["a"], &[], "2");
    // The live table has another number of rules in a chain.
    let mut short = live(&a);
    short.pop();
    assert_eq!(diff(&a, &b, &short), None);
    // A base chain's declaration changed.
    let mut c = b.clone();
    let i = c.iter().position(|o| *o == chain("prerouting")).unwrap();
    c[i] = c[i].replace(r#""name":"prerouting""#, r#""name":"prerouting","prio":0"#);
    assert_eq!(diff(&a, &c, &live(&a)), None);
    // A set's type changed.
    let s1 = batch(GW, &["a"], &[("s", "1")], "1");
    let s2: Vec<String> = s1
        .iter()
        .map(|o| o.replace("inet_service", "ipv4_addr"))
        .collect();
    assert_eq!(diff(&s1, &s2, &live(&s1)), None);
    // An object kind it does not know, an escaped name, no table replace.
    let mut d = b.clone();
    d.push(r#"{"add":{"map":{"family":"inet","table":"connroute","name":"m"}}}"#.into());
    assert_eq!(diff(&a, &d, &live(&a)), None);
    let mut e = b.clone();
    e.push(chain(r#"x\"y"#));
    assert_eq!(diff(&a, &e, &live(&a)), None);
    assert_eq!(diff(&a, &b[1..], &live(&a)), None);
}

#[test]
fn align_keeps_a_longest_common_subsequence() {
    let kept = align(&["a", "b", "c", "d"], &["b", "x", "d", "e"]);
    assert_eq!(kept, [(1, 0), (3, 2)]);
    let kept = align(&["p", "a", "b", "s"], &["p", "b", "a", "s"]);
    assert_eq!(kept.len(), 3);
    assert_eq!((kept[0], kept[2]), ((0, 0), (3, 3)));
}
