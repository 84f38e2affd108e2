//! Network: names and IP literals that lead to addresses a plugin must not reach, ports and
//! quotas, and connection handles. The only address any case ever connects to is 127.0.0.1,
//! on servers the test starts; every refused case checks its server saw no connection.

use crate::harness::*;

const BLOCKED: (&str, &str, &str) = ("deny", "network.addresses", "NET_ADDRESS_BLOCKED");

fn net_policy(mode: &str, rules: &str, extra: &str) -> String {
    format!(
        "version: 1\nmode: {mode}\nbudgets: {{ fuel: 50_000_000, timeout_ms: 5000, memory_bytes: 16MiB }}\nnetwork:\n  rules:\n{rules}{extra}"
    )
}

#[test]
fn names_that_resolve_to_blocked_addresses_are_refused_before_connecting() {
    let server = Server::start(Serve::Echo);
    let p = server.port;
    let names = [
        ("lo.test", "127.0.0.1", "loopback"),
        ("priv.test", "10.0.0.1", "private"),
        ("priv2.test", "192.168.1.1", "private"),
        ("ll.test", "169.254.1.1", "link-local"),
        ("cgnat.test", "100.64.0.1", "carrier-grade NAT"),
        ("mc.test", "224.0.0.1", "multicast"),
        ("unspec.test", "0.0.0.0", "unspecified"),
        ("meta.test", "169.254.169.254", "cloud metadata"),
        ("v6lo.test", "::1", "loopback"),
        ("mapped.test", "::ffff:127.0.0.1", "loopback"),
        ("v6meta.test", "fd00:ec2::254", "cloud metadata"),
        ("v6ll.test", "fe80::1", "link-local"),
    ];
    let resolve: Vec<String> = names
        .iter()
        .map(|(n, a, _)| format!("{n}: \"{a}\""))
        .collect();
    // The rule allows every `.test` name on the port, but names no address.
    let rules =
        format!("    - {{ id: tests, effect: allow, hosts: [\"*.test\"], ports: [{p}] }}\n");
    let extra = format!("  resolve: {{ {} }}\n", resolve.join(", "));
    for mode in ["enforce", "audit"] {
        let case = Case::new();
        case.policy(&net_policy(mode, &rules, &extra));
        let mut plugin = Plugin::new();
        for (name, _, _) in names {
            plugin = plugin.connect(name.as_bytes(), i32::from(p));
        }
        let run = case.run(&plugin.wat());
        assert_eq!(run.code, 0, "{mode}");
        assert_eq!(run.results(), vec![ERR_DENIED; names.len()], "{mode}");
        assert_eq!(run.triples(), n_times(names.len(), BLOCKED), "{mode}");
        for (event, (name, _, kind)) in run.events().iter().zip(names) {
            assert_eq!(event["context"]["host"], name);
            assert_eq!(event["context"]["address_kind"], kind, "{name}");
            assert_eq!(
                event["enforced"], true,
                "blocked addresses hold in audit mode"
            );
        }
        assert_eq!(run.events()[9]["context"]["address"], "127.0.0.1");
        assert_eq!(run.usage("net_connections"), 0);
    }
    assert_eq!(server.accepted(), 0, "no connection reached the server");
}

/// Every way to write 127.0.0.1 (and 0.0.0.0, which Linux connects to loopback) is the same
/// address to the policy: blocked when no rule names it, caught by a deny rule that names it
/// in its plain form, and connected to for real only when a rule names it.
#[test]
fn ip_literals_in_every_form_are_normalised_before_matching() {
    let server = Server::start(Serve::Echo);
    let p = i32::from(server.port);
    let loopback_forms: [&[u8]; 12] = [
        b"127.0.0.1",
        b"2130706433",
        b"0x7f000001",
        b"0x7f.0.0.1",
        b"0177.0.0.1",
        b"017700000001",
        b"127.1",
        b"127.0.1",
        b"::ffff:127.0.0.1",
        b"[::ffff:7f00:1]",
        b"127.0.0.1.",
        b"0X7F.0.0.01",
    ];
    let unspecified_forms: [&[u8]; 3] = [b"0", b"0.0.0.0", b"0x0"];
    let n = loopback_forms.len();

    // A rule for any host names no address: every form is blocked.
    let case = Case::new();
    case.policy(&net_policy(
        "enforce",
        &format!("    - {{ id: any, effect: allow, hosts: [\"*\"], ports: [{p}] }}\n"),
        "",
    ));
    let mut plugin = Plugin::new();
    for form in loopback_forms.iter().chain(&unspecified_forms) {
        plugin = plugin.connect(form, p);
    }
    // A name the system resolver turns into loopback is blocked the same way.
    let run = case.run(&plugin.connect(b"localhost", p).wat());
    assert_eq!(run.results(), vec![ERR_DENIED; n + 4]);
    assert_eq!(run.triples(), n_times(n + 4, BLOCKED));
    for event in &run.events()[..n] {
        assert_eq!(event["context"]["address"], "127.0.0.1", "{event}");
    }
    for event in &run.events()[n..n + 3] {
        assert_eq!(event["context"]["address_kind"], "unspecified");
    }
    assert_eq!(run.events()[n + 3]["context"]["address_kind"], "loopback");

    // A deny rule naming the plain form catches every other form.
    case.policy(&net_policy(
        "enforce",
        &format!(
            "    - {{ id: not-this-one, effect: deny, hosts: [\"127.0.0.1\"], ports: [{p}] }}\n    - {{ id: lan, effect: allow, cidrs: [\"127.0.0.0/8\"], ports: [{p}] }}\n"
        ),
        "",
    ));
    let mut plugin = Plugin::new();
    for form in loopback_forms {
        plugin = plugin.connect(form, p);
    }
    let run = case.run(&plugin.wat());
    assert_eq!(run.results(), vec![ERR_DENIED; n]);
    assert_eq!(
        run.triples(),
        n_times(n, ("deny", "not-this-one", "NET_HOST_NOT_ALLOWED"))
    );
    assert_eq!(server.accepted(), 0);

    // Named by a rule, the odd forms connect, to 127.0.0.1 and nowhere else.
    case.policy(&net_policy(
        "enforce",
        &format!("    - {{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{p}] }}\n"),
        "",
    ));
    let run = case.run(
        &Plugin::new()
            .connect(b"127.1", p)
            .connect(b"0x7f.0.0.1", p)
            .connect(b"[::ffff:7f00:1]", p)
            .wat(),
    );
    assert_eq!(run.results(), [1, 2, 3]);
    assert_eq!(run.triples(), n_times(3, ("allow", "lan", "ALLOWED")));
    assert_eq!(run.usage("net_connections"), 3);
    assert_eq!(server.accepted(), 3);
}

#[test]
fn an_allowed_host_on_a_forbidden_port_is_refused() {
    let allowed = Server::start(Serve::Echo);
    let other = Server::start(Serve::Echo);
    let case = Case::new();
    case.policy(&net_policy(
        "enforce",
        &format!(
            "    - {{ id: echo, effect: allow, hosts: [\"echo.test\"], cidrs: [\"127.0.0.1/32\"], ports: [{}] }}\n",
            allowed.port
        ),
        "  resolve: { echo.test: 127.0.0.1 }\n",
    ));
    let run = case.run(
        &Plugin::new()
            .connect(b"echo.test", i32::from(other.port))
            .connect(b"127.0.0.1", i32::from(other.port))
            .connect(b"echo.test", 0)
            .connect(b"echo.test", 65536)
            .connect(b"echo.test", -1)
            .wat(),
    );
    assert_eq!(
        run.results(),
        [
            ERR_DENIED,
            ERR_DENIED,
            ERR_INVALID,
            ERR_INVALID,
            ERR_INVALID
        ]
    );
    // Ports outside 1..=65535 are refused before any decision: no event.
    assert_eq!(
        run.triples(),
        n_times(2, ("deny", "echo", "NET_PORT_NOT_ALLOWED"))
    );
    assert_eq!((allowed.accepted(), other.accepted()), (0, 0));
}

#[test]
fn host_names_compare_case_insensitively_and_without_a_trailing_dot() {
    let server = Server::start(Serve::Echo);
    let p = server.port;
    let case = Case::new();
    case.policy(&net_policy(
        "enforce",
        &format!(
            "    - {{ id: not-this-one, effect: deny, hosts: [\"blocked.test\"], ports: [{p}] }}\n    - {{ id: tests, effect: allow, hosts: [\"*.test\"], cidrs: [\"127.0.0.1/32\"], ports: [{p}] }}\n"
        ),
        "  resolve: { blocked.test: 127.0.0.1, fine.test: 127.0.0.1 }\n",
    ));
    let p = i32::from(p);
    let run = case.run(
        &Plugin::new()
            .connect(b"BLOCKED.TEST.", p)
            .connect(b"Blocked.Test", p)
            .connect(b"[blocked.test]", p)
            .connect(b"FINE.test.", p)
            .wat(),
    );
    let deny = ("deny", "not-this-one", "NET_HOST_NOT_ALLOWED");
    assert_eq!(run.results(), [ERR_DENIED, ERR_DENIED, ERR_DENIED, 1]);
    assert_eq!(
        run.triples(),
        t(&[deny, deny, deny, ("allow", "tests", "ALLOWED")])
    );
    assert_eq!(server.accepted(), 1);
}

#[test]
fn connection_n_plus_one_is_refused_even_after_closing_the_others() {
    let server = Server::start(Serve::Echo);
    let p = i32::from(server.port);
    let case = Case::new();
    case.policy(&net_policy(
        "enforce",
        &format!("    - {{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{p}] }}\n"),
        "  quotas: { connections: 2 }\n",
    ));
    let run = case.run(
        &Plugin::new()
            .connect(b"127.0.0.1", p)
            .close()
            .connect(b"127.0.0.1", p)
            .close()
            .connect(b"127.0.0.1", p)
            .wat(),
    );
    assert_eq!(run.results(), [1, 0, 1, 0, ERR_QUOTA]);
    let ok = ("allow", "lan", "ALLOWED");
    assert_eq!(
        run.triples(),
        t(&[
            ok,
            ok,
            (
                "deny",
                "network.quotas.connections",
                "NET_CONNECTION_QUOTA_EXCEEDED"
            )
        ])
    );
    assert_eq!(run.usage("net_connections"), 2);
    assert_eq!(server.accepted(), 2);
}

/// One-byte sends until refused: exactly the quota's bytes leave the sandbox. Then the
/// server floods, and receives stop exactly at the ingress quota.
#[test]
fn drip_egress_and_flooded_ingress_stop_exactly_at_their_quotas() {
    let server = Server::start(Serve::Silent);
    let p = i32::from(server.port);
    let case = Case::new();
    let rules =
        format!("    - {{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{p}] }}\n");
    case.policy(&net_policy(
        "enforce",
        &rules,
        "  quotas: { egress_bytes: 100, ingress_bytes: 100 }\n",
    ));
    let mut plugin = Plugin::new().connect(b"127.0.0.1", p);
    let byte = plugin.bytes(b"d");
    let plugin = plugin.raw(&format!(
        "(local.set $i (i32.const 0))
         (block $refused
           (loop $again
             (local.set $n (call $net_send (local.get $h) {byte}))
             (br_if $refused (i32.ne (local.get $n) (i32.const 1)))
             (local.set $i (i32.add (local.get $i) (i32.const 1)))
             (br_if $again (i32.lt_u (local.get $i) (i32.const 1000)))))
         (call $emit (local.get $i))
         (call $emit (local.get $n))"
    ));
    let run = case.run(&plugin.send(b"").wat());
    assert_eq!(run.results(), [1, 100, ERR_QUOTA, 0]);
    assert_eq!(run.usage("net_egress_bytes"), 100);
    assert_eq!(
        run.triples()[101],
        (
            "deny".into(),
            "network.quotas.egress_bytes".into(),
            "NET_EGRESS_QUOTA_EXCEEDED".into()
        )
    );
    assert_eq!(
        server.received_settled(),
        100,
        "exactly the quota left the sandbox"
    );

    let flood = Server::start(Serve::Flood(10_000));
    let p = i32::from(flood.port);
    case.policy(&net_policy(
        "enforce",
        &format!("    - {{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{p}] }}\n"),
        "  quotas: { ingress_bytes: 100 }\n",
    ));
    let plugin = Plugin::new().connect(b"127.0.0.1", p).raw(&format!(
        "(local.set $i (i32.const 0))
         (block $refused
           (loop $again
             (local.set $n (call $net_recv (local.get $h) (i32.const {BUF}) (i32.const 64) (i32.const 2000)))
             (br_if $refused (i32.le_s (local.get $n) (i32.const 0)))
             (local.set $i (i32.add (local.get $i) (local.get $n)))
             (br $again)))
         (call $emit (local.get $i))
         (call $emit (local.get $n))"
    ));
    let run = case.run(&plugin.wat());
    assert_eq!(run.results(), [1, 100, ERR_QUOTA]);
    assert_eq!(run.usage("net_ingress_bytes"), 100);
    assert_eq!(
        run.triples().last().unwrap().2,
        "NET_INGRESS_QUOTA_EXCEEDED"
    );
}

#[test]
fn closed_and_forged_handles_are_refused_in_every_mode() {
    let server = Server::start(Serve::Echo);
    let p = i32::from(server.port);
    let forged = [0, -1, 2, 64, 65, i32::MAX, i32::MIN];
    for mode in ["enforce", "audit"] {
        let case = Case::new();
        case.policy(&net_policy(
            mode,
            &format!(
                "    - {{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{p}] }}\n"
            ),
            "",
        ));
        let mut plugin = Plugin::new()
            .connect(b"127.0.0.1", p)
            .send(b"ping")
            .close()
            .send(b"after close")
            .recv(16, 10)
            .close();
        for handle in forged {
            plugin = plugin
                .send_on(handle, b"x")
                .recv_on(handle, 16, 10)
                .close_on(handle);
        }
        let run = case.run(&plugin.wat());
        assert_eq!(run.code, 0, "{mode}");
        let mut expected = vec![1, 4, 0, ERR_BAD_HANDLE, ERR_BAD_HANDLE, ERR_BAD_HANDLE];
        expected.extend(vec![ERR_BAD_HANDLE; 3 * forged.len()]);
        assert_eq!(run.results(), expected, "{mode}");
        let bad = ("deny", "handles", "HANDLE_INVALID");
        let mut triples = t(&[("allow", "lan", "ALLOWED"), ("allow", "lan", "ALLOWED")]);
        triples.extend(n_times(3 + 3 * forged.len(), bad));
        assert_eq!(run.triples(), triples, "{mode}");
        let capabilities: Vec<&str> = run.events()[2..5]
            .iter()
            .map(|e| e["capability"].as_str().unwrap())
            .collect();
        assert_eq!(capabilities, ["net.send", "net.receive", "net.close"]);
        assert!(run.events().iter().all(|e| e["enforced"] == true));
        assert_eq!(run.usage("net_egress_bytes"), 4);
    }
}
