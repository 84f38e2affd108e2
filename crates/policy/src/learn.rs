//! `policy learn`: from the events of one audit-mode run, the least-privilege policy that
//! allows exactly what the run did. Like audit2allow, but it never widens: every filesystem
//! rule names the exact paths seen, every network rule the exact hosts and ports; quotas and
//! budgets are what the run used plus [`HEADROOM_PERCENT`]. What no policy rule can allow
//! (paths outside every mount, read-only mounts, invalid paths, blocked addresses, guest
//! faults) is not granted and is listed in a comment at the end of the file.
//!
//! This module is pure: the caller runs the plugin and hands over what the report recorded.

use std::collections::{BTreeMap, BTreeSet};

use crate::decide::{FsAccess, FsRequest, NetAccess, NetRequest, Request, Usage, Verdict};
use crate::glob::GlobPattern;
use crate::model::{Effect, FsOperation, FsOperations, OnDeny, Policy};
use crate::net::{
    blocked_address_kind, canonical_ip, normalize_host, parse_ip_literal, HostPattern,
};
use crate::path::normalize_guest_path;
use crate::reason::ReasonCode;
use crate::yaml_text::{escape, group_digits, quote, seq_ranges, size, slug, with_headroom};

/// The headroom added to every learned quota and budget, in percent of what the run used.
pub const HEADROOM_PERCENT: u64 = 25;

/// Linear memory grows in 64 KiB pages, so a memory budget is a whole number of them.
const WASM_PAGE: u64 = 64 << 10;

/// Longest rule id a policy accepts.
const MAX_RULE_ID: usize = 64;

/// True for the reasons a policy rule or quota can turn into an allow: exactly the denies
/// that audit mode relaxes. Mounts, invalid paths, blocked addresses and guest faults are not
/// among them; no rule can allow those.
pub fn grantable(reason: ReasonCode) -> bool {
    matches!(
        reason,
        ReasonCode::FsPathNotAllowed
            | ReasonCode::FsReadQuotaExceeded
            | ReasonCode::FsWriteQuotaExceeded
            | ReasonCode::NetHostNotAllowed
            | ReasonCode::NetPortNotAllowed
            | ReasonCode::NetConnectionQuotaExceeded
            | ReasonCode::NetEgressQuotaExceeded
            | ReasonCode::NetIngressQuotaExceeded
    )
}

/// Reasons that end a run rather than refuse one request: reflected in the learned budgets
/// and in a warning, not listed as requests.
fn ends_run(reason: ReasonCode) -> bool {
    matches!(
        reason,
        ReasonCode::FuelExhausted
            | ReasonCode::Timeout
            | ReasonCode::MemoryLimit
            | ReasonCode::Trapped
            | ReasonCode::Cancelled
    )
}

/// One recorded event of the learn run: the report's own event type.
pub type ObservedEvent = crate::event::RecordedEvent;

/// What the learn run did and used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedRun {
    /// The recorded events, in order.
    pub events: Vec<ObservedEvent>,
    /// Events past `limits.max_events`, counted but not recorded: learning from them is
    /// impossible, so a non-zero count is a warning.
    pub not_recorded: u64,
    /// The usage counters of the report.
    pub usage: Usage,
    /// Fuel the run consumed.
    pub fuel_consumed: u64,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: u64,
    /// The report's `outcome.status` (`completed`, `trapped`, ...) and message.
    pub status: String,
    /// The outcome's message.
    pub message: String,
}

/// Where the run came from, for the file's header and its mounts.
#[derive(Debug, Clone, Default)]
pub struct LearnSource {
    /// The plugin's path as given.
    pub plugin_path: String,
    /// The plugin's SHA-256, hex.
    pub plugin_sha256: String,
    /// The base policy's path; `None` for the built-in strict template.
    pub base_path: Option<String>,
    /// The absolute host folder of each of the base policy's mounts, in order.
    pub mount_hosts: Vec<String>,
}

/// A request the learned policy does not grant, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotGranted {
    /// The event's `seq`.
    pub seq: u64,
    /// The capability asked for.
    pub capability: String,
    /// What was asked: a path, `host:port`, or empty for a guest fault.
    pub target: String,
    /// Why it is not granted: a reason code, or a sentence.
    pub reason: String,
}

/// The most each quota had to allow at some point of the run: for every request let through,
/// what was used before it plus what it asked (a receive needs one byte of room left, a
/// connect one connection). More than the final usage when a request asked for more than it
/// moved, as a write that then failed does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaNeeds {
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Connections made.
    pub connections: u64,
    /// Bytes sent.
    pub egress_bytes: u64,
    /// Bytes received.
    pub ingress_bytes: u64,
    /// Files, directories and links created (`filesystem.quotas.entries`).
    pub entries: u64,
}

impl QuotaNeeds {
    /// Walks the run's events in order, as the broker accounted them.
    pub fn of(events: &[ObservedEvent]) -> QuotaNeeds {
        let mut used = Usage::default();
        let mut need = QuotaNeeds::default();
        for event in events {
            let permitted = event.permitted();
            let Some(request) = event.request.as_ref().filter(|_| permitted) else {
                continue;
            };
            let done = event.bytes_done().unwrap_or(0);
            let step = |used: &mut u64, need: &mut u64, asked: u64, moved: u64| {
                *need = (*need).max(used.saturating_add(asked));
                *used = used.saturating_add(moved);
            };
            match request {
                Request::Fs(r) => match r.op {
                    FsAccess::Read => {
                        step(&mut used.fs_read_bytes, &mut need.read_bytes, r.bytes, done)
                    }
                    FsAccess::Write => step(
                        &mut used.fs_write_bytes,
                        &mut need.write_bytes,
                        r.bytes,
                        done,
                    ),
                    _ => {}
                },
                Request::Net(r) => match r.op {
                    NetAccess::Connect => {
                        step(&mut used.net_connections, &mut need.connections, 1, 1)
                    }
                    NetAccess::Send => step(
                        &mut used.net_egress_bytes,
                        &mut need.egress_bytes,
                        r.bytes,
                        done,
                    ),
                    // A receive is refused only once the quota is used up, and reads at most
                    // what is left: room for what it got, and at least one byte.
                    NetAccess::Receive => step(
                        &mut used.net_ingress_bytes,
                        &mut need.ingress_bytes,
                        done.max(1),
                        done,
                    ),
                    NetAccess::Resolve => {}
                },
                // Link target bytes count against the write quota.
                Request::FsLink(r) => {
                    let n = r.target.len() as u64;
                    step(&mut used.fs_write_bytes, &mut need.write_bytes, n, n)
                }
                Request::FsOpen(_)
                | Request::NetOpen(_)
                | Request::Env(_)
                | Request::Clock(_)
                | Request::Random(_) => {}
            }
            if let Request::Fs(r) = request {
                if matches!(r.op, FsAccess::Create | FsAccess::Symlink) {
                    step(&mut used.fs_entries_created, &mut need.entries, 1, 1);
                }
            }
        }
        need
    }
}

/// A learned filesystem rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedFsRule {
    /// The rule id.
    pub id: String,
    /// The operations it grants.
    pub ops: Vec<FsOperation>,
    /// The exact paths it names.
    pub paths: Vec<String>,
    /// The events it covers.
    pub seqs: Vec<u64>,
}

/// A learned network rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedNetRule {
    /// The rule id.
    pub id: String,
    /// The host pattern (a name or an address).
    pub host: String,
    /// CIDRs naming a blocked address the base policy named.
    pub cidrs: Vec<String>,
    /// The ports it grants.
    pub ports: Vec<u16>,
    /// The events it covers.
    pub seqs: Vec<u64>,
}

/// The learned policy: its YAML text and what went into it.
#[derive(Debug, Clone)]
pub struct Learned {
    /// The learned policy, as YAML with comments.
    pub text: String,
    /// Its filesystem rules.
    pub fs_rules: Vec<LearnedFsRule>,
    /// Its network rules.
    pub net_rules: Vec<LearnedNetRule>,
    /// Requests it does not grant, and why.
    pub not_granted: Vec<NotGranted>,
    /// Base deny rules that matched requests the learned policy now allows, with the seqs.
    pub overridden: Vec<(String, Vec<u64>)>,
    /// Reasons the learned policy may not cover every run of the plugin.
    pub warnings: Vec<String>,
}

#[derive(Default)]
struct PathGrant {
    ops: FsOperations,
    stat: bool,
    seqs: Vec<u64>,
    capabilities: BTreeSet<String>,
    via_symlink: bool,
}

#[derive(Default)]
struct HostGrant {
    /// The host name, for `resolve` pins; `None` for an IP literal.
    name: Option<String>,
    ports: BTreeSet<u16>,
    cidrs: BTreeSet<String>,
    seqs: Vec<u64>,
    capabilities: BTreeSet<String>,
}

fn fs_operation(access: FsAccess) -> Option<FsOperation> {
    match access {
        FsAccess::Read => Some(FsOperation::Read),
        FsAccess::Write => Some(FsOperation::Write),
        FsAccess::Create => Some(FsOperation::Create),
        FsAccess::Delete => Some(FsOperation::Delete),
        FsAccess::List => Some(FsOperation::List),
        FsAccess::Rename => Some(FsOperation::Rename),
        FsAccess::Symlink => Some(FsOperation::Symlink),
        FsAccess::Stat => None,
    }
}

/// What a request asked for, in words for a comment or a listing.
/// Kept for callers of the old path; the text comes from [`Request::target`].
pub fn target(request: &Request) -> String {
    request.target()
}

/// The normalised paths a filesystem rule must name for this request: the path as asked and,
/// for a symlink, the path it resolved to (decide checks both).
fn fs_paths(request: &FsRequest) -> Result<Vec<String>, String> {
    if request.not_utf8 {
        return Err("the path is not UTF-8".into());
    }
    let asked =
        normalize_guest_path(request.path.as_bytes()).map_err(|e| e.describe().to_owned())?;
    let mut paths = vec![asked.clone()];
    if let Some(resolved) = &request.resolved {
        let resolved = normalize_guest_path(resolved.as_bytes())
            .map_err(|e| format!("the symlink target: {}", e.describe()))?;
        if resolved != asked {
            paths.push(resolved);
        }
    }
    for path in &paths {
        // A path with wildcard characters cannot be named exactly: as a glob it would match
        // its neighbours too (or not parse at all).
        match GlobPattern::parse(path) {
            Ok(glob) if glob.is_literal() && glob.matches(path) => {}
            _ => {
                return Err(format!(
                    "`{}` has glob characters (`*`, `?`, `[]`, `{{}}`), so no rule can name it alone; allow it by hand if you must",
                    escape(path)
                ))
            }
        }
    }
    Ok(paths)
}

/// The host pattern that names exactly this host, the name to keep a `resolve` pin for, and
/// (when `name_address`) the CIDR that names its address if the address is one that is
/// blocked unless a rule names it: the request was let through, so the base policy named it.
fn net_grant(
    request: &NetRequest,
    name_address: bool,
) -> Result<(String, Option<String>, Option<String>), String> {
    let host = normalize_host(&request.host);
    let literal = parse_ip_literal(&host);
    let pattern = match literal {
        Some(ip) => ip.to_string(),
        None => host.clone(),
    };
    let exact = match HostPattern::parse(&pattern) {
        Ok(HostPattern::Exact(name)) => name == host,
        Ok(HostPattern::Address(ip)) => Some(ip) == literal,
        _ => false,
    };
    if !exact {
        return Err(format!(
            "host `{}` is not a host name or address a rule can name exactly",
            escape(&request.host)
        ));
    }
    if request.port == 0 {
        return Err("port 0 cannot be allowed by a rule".into());
    }
    let cidr = match (literal, request.address) {
        (None, Some(address)) if name_address && blocked_address_kind(address).is_some() => {
            let address = canonical_ip(address);
            let bits = if address.is_ipv4() { 32 } else { 128 };
            Some(format!("{address}/{bits}"))
        }
        _ => None,
    };
    let name = literal.is_none().then_some(host);
    Ok((pattern, name, cidr))
}

/// Learns the least-privilege policy for `run` on top of `base` (whose mounts, stdio caps,
/// environment, limits and wall-clock budget it keeps).
pub fn learn(base: &Policy, run: &ObservedRun, source: &LearnSource) -> Learned {
    let mut paths: BTreeMap<String, PathGrant> = BTreeMap::new();
    let mut hosts: BTreeMap<String, HostGrant> = BTreeMap::new();
    let mut not_granted = Vec::new();
    let mut overridden: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let base_denies: BTreeSet<&str> = base
        .filesystem
        .rules
        .iter()
        .filter(|r| r.effect == Effect::Deny)
        .map(|r| r.id.as_str())
        .chain(
            base.network
                .rules
                .iter()
                .filter(|r| r.effect == Effect::Deny)
                .map(|r| r.id.as_str()),
        )
        .collect();

    for event in &run.events {
        let wanted = event.decision == Verdict::Allow || grantable(event.reason_code);
        let refuse = |target: String, reason: String| NotGranted {
            seq: event.seq,
            capability: event.capability.clone(),
            target,
            reason,
        };
        let Some(request) = &event.request else {
            if event.decision == Verdict::Deny && !ends_run(event.reason_code) {
                not_granted.push(refuse(String::new(), event.reason_code.as_str().to_owned()));
            }
            continue;
        };
        // A name that resolved to a blocked address: the name and port are granted (as a
        // rule can), the address stays blocked, so the rerun reports the same reason.
        let blocked_name = matches!(request, Request::Net(r) if event.reason_code == ReasonCode::NetAddressBlocked
            && parse_ip_literal(&normalize_host(&r.host)).is_none());
        if !wanted && !blocked_name {
            not_granted.push(refuse(
                target(request),
                event.reason_code.as_str().to_owned(),
            ));
            continue;
        }
        if blocked_name {
            not_granted.push(refuse(
                target(request),
                format!(
                    "{} (the name and port are allowed; the address it resolved to stays blocked)",
                    event.reason_code.as_str()
                ),
            ));
        }
        let granted = match request {
            Request::Fs(r) => fs_paths(r).map(|found| {
                let via_symlink = found.len() > 1;
                for path in found {
                    let grant = paths.entry(path).or_default();
                    match fs_operation(r.op) {
                        Some(op) => grant.ops.insert(op),
                        None => grant.stat = true,
                    }
                    // A file written here may not exist on the next run: `create` goes with
                    // `write`, or the learned policy fails on a clean folder.
                    if r.op == FsAccess::Write {
                        grant.ops.insert(FsOperation::Create);
                    }
                    grant.seqs.push(event.seq);
                    grant.capabilities.insert(event.capability.clone());
                    grant.via_symlink |= via_symlink;
                }
            }),
            Request::Net(r) => net_grant(r, !blocked_name).map(|(pattern, name, cidr)| {
                let grant = hosts.entry(pattern).or_default();
                grant.name = name;
                grant.ports.insert(r.port);
                grant.cidrs.extend(cidr);
                grant.seqs.push(event.seq);
                grant.capabilities.insert(event.capability.clone());
            }),
            // Open-file and connection caps, link targets, env, clocks and random need no
            // rule of their own: quotas are learned from the usage, the rest is built in.
            Request::FsOpen(_)
            | Request::NetOpen(_)
            | Request::FsLink(_)
            | Request::Env(_)
            | Request::Clock(_)
            | Request::Random(_) => Ok(()),
        };
        match granted {
            Ok(()) => {
                if event.decision == Verdict::Deny && base_denies.contains(event.rule_id.as_str()) {
                    overridden
                        .entry(event.rule_id.clone())
                        .or_default()
                        .push(event.seq);
                }
            }
            Err(why) => not_granted.push(refuse(target(request), why)),
        }
    }

    let fs_rules = fs_rules(base, &paths);
    let net_rules = net_rules(&hosts);
    let mut warnings = Vec::new();
    if run.status != "completed" {
        warnings.push(format!(
            "the run ended `{}` ({}): the learned policy covers only what the plugin did before that",
            run.status,
            escape(&run.message)
        ));
    }
    if run.not_recorded > 0 {
        warnings.push(format!(
            "{} events were past the base policy's `limits.max_events` and not recorded: the learned policy cannot cover them; raise the limit in the base policy and learn again",
            run.not_recorded
        ));
    }
    let learned = Learned {
        text: String::new(),
        fs_rules,
        net_rules,
        not_granted,
        overridden: overridden.into_iter().collect(),
        warnings,
    };
    let text = render(base, run, source, &learned, &paths, &hosts);
    Learned { text, ..learned }
}

fn ops_slug(ops: &[FsOperation]) -> String {
    ops.iter()
        .map(|op| op.as_str())
        .collect::<Vec<_>>()
        .join("-")
}

/// Unique rule ids of at most [`MAX_RULE_ID`] characters.
fn unique_id(wanted: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = wanted.chars().take(MAX_RULE_ID - 4).collect();
    while base.ends_with('-') {
        base.pop();
    }
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(id.clone());
    id
}

/// One rule per (mount, set of operations), naming the exact paths.
fn fs_rules(base: &Policy, paths: &BTreeMap<String, PathGrant>) -> Vec<LearnedFsRule> {
    type Group = (Vec<FsOperation>, Vec<String>, Vec<u64>);
    let mut groups: BTreeMap<(usize, String), Group> = BTreeMap::new();
    for (path, grant) in paths {
        let mut ops = grant.ops;
        // `stat` is granted by `read` or `list`; grant `read` only when neither was seen.
        if grant.stat && !ops.contains(FsOperation::Read) && !ops.contains(FsOperation::List) {
            ops.insert(FsOperation::Read);
        }
        let ops: Vec<FsOperation> = ops.iter().collect();
        let mount = base.mount_for(path).map(|(i, _)| i).unwrap_or(usize::MAX);
        let entry = groups.entry((mount, ops_slug(&ops))).or_default();
        entry.0 = ops;
        entry.1.push(path.clone());
        entry.2.extend(&grant.seqs);
    }
    // In the order the run first needed them, mount by mount.
    let mut groups: Vec<(usize, Group)> = groups
        .into_iter()
        .map(|((mount, _), (ops, paths, mut seqs))| {
            seqs.sort_unstable();
            seqs.dedup();
            (mount, (ops, paths, seqs))
        })
        .collect();
    groups.sort_by_key(|(mount, (_, _, seqs))| (*mount, seqs.first().copied()));
    let mut taken = BTreeSet::new();
    groups
        .into_iter()
        .map(|(mount, (ops, paths, seqs))| {
            let place = base
                .filesystem
                .mounts
                .get(mount)
                .map(|m| slug(&m.guest))
                .unwrap_or_else(|| "fs".into());
            LearnedFsRule {
                id: unique_id(&format!("{}-{place}", ops_slug(&ops)), &mut taken),
                ops,
                paths,
                seqs,
            }
        })
        .collect()
}

fn net_rules(hosts: &BTreeMap<String, HostGrant>) -> Vec<LearnedNetRule> {
    let mut taken = BTreeSet::new();
    let mut rules: Vec<LearnedNetRule> = hosts
        .iter()
        .map(|(host, grant)| {
            let mut seqs = grant.seqs.clone();
            seqs.sort_unstable();
            seqs.dedup();
            LearnedNetRule {
                id: String::new(),
                host: host.clone(),
                cidrs: grant.cidrs.iter().cloned().collect(),
                ports: grant.ports.iter().copied().collect(),
                seqs,
            }
        })
        .collect();
    rules.sort_by_key(|r| r.seqs.first().copied());
    for rule in &mut rules {
        rule.id = unique_id(&format!("net-{}", slug(&rule.host)), &mut taken);
    }
    rules
}

fn join_quoted<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().map(quote).collect::<Vec<_>>().join(", ")
}

fn render(
    base: &Policy,
    run: &ObservedRun,
    source: &LearnSource,
    learned: &Learned,
    paths: &BTreeMap<String, PathGrant>,
    hosts: &BTreeMap<String, HostGrant>,
) -> String {
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    let base_name = match &source.base_path {
        Some(path) => format!("`{}`", escape(path)),
        None => "the strict template".to_owned(),
    };
    line("# Learned by `sandbox-cli policy learn` from one audit-mode run:");
    line(&format!(
        "#   plugin: `{}` (sha256 {})",
        escape(&source.plugin_path),
        escape(&source.plugin_sha256)
    ));
    line(&format!("#   base:   {base_name}"));
    line(&format!(
        "#   run:    {}, {} events recorded",
        escape(&run.status),
        run.events.len()
    ));
    line("# It allows only what the run did (or was denied doing, where a rule can allow it):");
    line("# exact paths, exact hosts and ports, in the base policy's mounts. Quotas and budgets");
    line(&format!(
        "# are what the run needed plus {HEADROOM_PERCENT}%. Review it, and check it with `sandbox-cli policy lint`."
    ));
    for warning in &learned.warnings {
        line(&format!("# WARNING: {warning}"));
    }
    line("version: 1");
    line(&format!(
        "name: {}",
        quote(&format!("{}-learned", base.name))
    ));
    line("mode: enforce");
    line(&format!(
        "on_deny: {}",
        match base.on_deny {
            OnDeny::Error => "error",
            OnDeny::Trap => "trap",
        }
    ));
    line(&format!("deterministic: {}", base.deterministic));

    let need = QuotaNeeds::of(&run.events);
    render_budgets(&mut out, base, run);
    render_filesystem(&mut out, base, run, source, learned, paths, &need);
    render_network(&mut out, base, run, learned, hosts, &need);
    render_tail(&mut out, base, learned);
    out
}

/// The `budgets` section: what the run used plus headroom; the wall clock from the base.
fn render_budgets(out: &mut String, base: &Policy, run: &ObservedRun) {
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    let fuel = with_headroom(run.fuel_consumed, HEADROOM_PERCENT).max(1);
    let memory = with_headroom(run.peak_memory_bytes, HEADROOM_PERCENT)
        .div_ceil(WASM_PAGE)
        .max(1)
        .saturating_mul(WASM_PAGE);
    line("budgets:");
    line(&format!(
        "  fuel: {}   # used {}, plus {HEADROOM_PERCENT}%",
        group_digits(fuel),
        group_digits(run.fuel_consumed)
    ));
    line(&format!(
        "  timeout_ms: {}   # kept from the base policy: wall-clock time is not learned",
        group_digits(base.budgets.timeout_ms.value)
    ));
    line(&format!(
        "  memory_bytes: {}   # peak {} bytes, plus {HEADROOM_PERCENT}%, in whole 64 KiB pages",
        size(memory),
        group_digits(run.peak_memory_bytes)
    ));
}

/// The `filesystem` section: the base's mounts, the learned rules and quotas.
fn render_filesystem(
    out: &mut String,
    base: &Policy,
    run: &ObservedRun,
    source: &LearnSource,
    learned: &Learned,
    paths: &BTreeMap<String, PathGrant>,
    need: &QuotaNeeds,
) {
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    let fs = &base.filesystem;
    if !fs.mounts.is_empty() {
        line("filesystem:");
        line("  # The base policy's mounts, with absolute host folders.");
        line("  mounts:");
        for (i, mount) in fs.mounts.iter().enumerate() {
            let host = source
                .mount_hosts
                .get(i)
                .cloned()
                .unwrap_or_else(|| base.mount_host_path(mount).display().to_string());
            let used = learned.fs_rules.iter().any(|r| {
                r.paths
                    .iter()
                    .any(|p| base.mount_for(p).map(|(m, _)| m) == Some(i))
            });
            line(&format!(
                "    - {{ guest: {}, host: {}, mode: {} }}{}",
                quote(&mount.guest),
                quote(&host),
                mount.mode.as_str(),
                if used {
                    ""
                } else {
                    "   # no request of the run reached it"
                }
            ));
        }
        if !learned.fs_rules.is_empty() {
            line("  rules:");
        }
        for rule in &learned.fs_rules {
            let capabilities: BTreeSet<&str> = rule
                .paths
                .iter()
                .filter_map(|p| paths.get(p))
                .flat_map(|g| g.capabilities.iter().map(String::as_str))
                .collect();
            line(&format!(
                "    # {} {}: {}",
                if rule.seqs.len() == 1 {
                    "event"
                } else {
                    "events"
                },
                seq_ranges(&rule.seqs),
                capabilities.into_iter().collect::<Vec<_>>().join(", ")
            ));
            if rule
                .paths
                .iter()
                .any(|p| paths.get(p).is_some_and(|g| g.via_symlink))
            {
                line(
                    "    # (a symlink: the path asked and the path it resolves to are both named)",
                );
            }
            for (deny, seqs) in &learned.overridden {
                let hit: Vec<u64> = seqs
                    .iter()
                    .copied()
                    .filter(|s| rule.seqs.contains(s))
                    .collect();
                if !hit.is_empty() && fs.rules.iter().any(|r| r.id == *deny) {
                    line(&format!(
                        "    # REVIEW: the base policy's deny rule `{}` matched {} {}; this rule allows {}",
                        escape(deny),
                        if hit.len() == 1 { "event" } else { "events" },
                        seq_ranges(&hit),
                        if hit.len() == 1 { "it" } else { "them" }
                    ));
                }
            }
            line(&format!(
                "    - {{ id: {}, effect: allow, ops: [{}], paths: [{}] }}",
                rule.id,
                rule.ops
                    .iter()
                    .map(|o| o.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                join_quoted(rule.paths.iter().map(String::as_str))
            ));
        }
        let read = need.read_bytes.max(run.usage.fs_read_bytes);
        let write = need.write_bytes.max(run.usage.fs_write_bytes);
        // A count quota is kept (learned) when the base policy sets one.
        let entries = fs.quotas.entries.map(|_| {
            let n = need.entries.max(run.usage.fs_entries_created);
            (
                format!(
                    ", entries: {}",
                    group_digits(with_headroom(n, HEADROOM_PERCENT))
                ),
                format!(", {} entries created", group_digits(n)),
            )
        });
        let (entries, entries_note) = entries.unwrap_or_default();
        line(&format!(
            "  quotas: {{ read_bytes: {}, write_bytes: {}{entries} }}   # the run needed {} and {} bytes{entries_note}; plus {HEADROOM_PERCENT}%",
            group_digits(with_headroom(read, HEADROOM_PERCENT)),
            group_digits(with_headroom(write, HEADROOM_PERCENT)),
            group_digits(read),
            group_digits(write)
        ));
    }
}

/// The `network` section: the learned rules, quotas and the base's pins for their names.
fn render_network(
    out: &mut String,
    base: &Policy,
    run: &ObservedRun,
    learned: &Learned,
    hosts: &BTreeMap<String, HostGrant>,
    need: &QuotaNeeds,
) {
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    if !learned.net_rules.is_empty() {
        line("network:");
        line("  rules:");
        for rule in &learned.net_rules {
            let grant = hosts.get(&rule.host);
            let capabilities: Vec<&str> = grant
                .map(|g| g.capabilities.iter().map(String::as_str).collect())
                .unwrap_or_default();
            line(&format!(
                "    # {} {}: {}",
                if rule.seqs.len() == 1 {
                    "event"
                } else {
                    "events"
                },
                seq_ranges(&rule.seqs),
                capabilities.join(", ")
            ));
            for (deny, seqs) in &learned.overridden {
                let hit: Vec<u64> = seqs
                    .iter()
                    .copied()
                    .filter(|s| rule.seqs.contains(s))
                    .collect();
                if !hit.is_empty() && base.network.rules.iter().any(|r| r.id == *deny) {
                    line(&format!(
                        "    # REVIEW: the base policy's deny rule `{}` matched {} {}; this rule allows {}",
                        escape(deny),
                        if hit.len() == 1 { "event" } else { "events" },
                        seq_ranges(&hit),
                        if hit.len() == 1 { "it" } else { "them" }
                    ));
                }
            }
            if !rule.cidrs.is_empty() {
                line(&format!(
                    "    # {} named because the base policy named it: such an address is blocked unless a rule names it, and naming it also allows any name that resolves to it on these ports",
                    rule.cidrs.join(", ")
                ));
            }
            let cidrs = if rule.cidrs.is_empty() {
                String::new()
            } else {
                format!(
                    ", cidrs: [{}]",
                    join_quoted(rule.cidrs.iter().map(String::as_str))
                )
            };
            line(&format!(
                "    - {{ id: {}, effect: allow, hosts: [{}]{cidrs}, ports: [{}] }}",
                rule.id,
                quote(&rule.host),
                rule.ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let usage = &run.usage;
        let connections = need.connections.max(usage.net_connections);
        let egress = need.egress_bytes.max(usage.net_egress_bytes);
        let ingress = need.ingress_bytes.max(usage.net_ingress_bytes);
        line(&format!(
            "  quotas: {{ connections: {}, egress_bytes: {}, ingress_bytes: {} }}   # the run needed {}, {} and {}; plus {HEADROOM_PERCENT}%",
            group_digits(with_headroom(connections, HEADROOM_PERCENT)),
            group_digits(with_headroom(egress, HEADROOM_PERCENT)),
            group_digits(with_headroom(ingress, HEADROOM_PERCENT)),
            group_digits(connections),
            group_digits(egress),
            group_digits(ingress),
        ));
        let pins: Vec<String> = base
            .network
            .resolve
            .iter()
            .filter(|(name, _)| hosts.values().any(|g| g.name.as_deref() == Some(name)))
            .map(|(name, ip)| format!("{}: {}", quote(name), quote(&ip.to_string())))
            .collect();
        if !pins.is_empty() {
            line(&format!(
                "  resolve: {{ {} }}   # the base policy's pins for these names",
                pins.join(", ")
            ));
        }
    }
}

/// `stdio`, `env` and `limits` from the base, then what stays denied, as comments.
fn render_tail(out: &mut String, base: &Policy, learned: &Learned) {
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&format!(
        "stdio: {{ stdout_bytes: {}, stderr_bytes: {} }}",
        size(base.stdio.stdout_bytes.value),
        size(base.stdio.stderr_bytes.value)
    ));
    if !base.env.is_empty() {
        let env: Vec<String> = base
            .env
            .iter()
            .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
            .collect();
        line(&format!("env: {{ {} }}", env.join(", ")));
    }
    line(&format!(
        "limits: {{ max_events: {}, module_bytes: {}, open_files: {} }}",
        group_digits(base.limits.max_events.value),
        size(base.limits.module_bytes.value),
        group_digits(base.limits.open_files.value)
    ));

    if !learned.not_granted.is_empty() {
        line("");
        line("# Not granted: no policy rule can allow these, so they stay denied.");
        for n in &learned.not_granted {
            let target = if n.target.is_empty() {
                String::new()
            } else {
                format!(" `{}`", escape(&n.target))
            };
            line(&format!(
                "#   event {}: {}{target}: {}",
                n.seq,
                escape(&n.capability),
                n.reason
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{FsRequest, NetAccess, NetRequest};
    use crate::parse::parse_policy;
    use std::net::IpAddr;
    use std::path::Path;

    const BASE: &str = r#"
version: 1
name: base
mode: enforce
budgets: { fuel: 1_000_000, timeout_ms: 500, memory_bytes: 1MiB }
filesystem:
  mounts:
    - { guest: /data, host: ./data, mode: ro }
    - { guest: /out, host: ./out, mode: rw }
  rules:
    - { id: read-data, effect: allow, ops: [read, list], paths: ["/data/**"] }
    - { id: no-secrets, effect: deny, ops: [read], paths: ["/data/secret/**"] }
network:
  rules:
    - { id: echo, effect: allow, hosts: ["echo.test"], cidrs: ["127.0.0.1/32"], ports: [7000] }
  resolve: { echo.test: 127.0.0.1, unused.test: 127.0.0.2 }
env: { LANG: C }
"#;

    fn base() -> Policy {
        parse_policy(BASE, Path::new("/policies")).unwrap()
    }

    fn fs(op: FsAccess, path: &str, bytes: u64) -> Request {
        Request::Fs(FsRequest {
            op,
            path: path.into(),
            not_utf8: false,
            resolved: None,
            bytes,
        })
    }

    fn net(op: NetAccess, host: &str, port: u16, address: Option<&str>, bytes: u64) -> Request {
        Request::Net(NetRequest {
            op,
            host: host.into(),
            port,
            address: address.map(|a| a.parse::<IpAddr>().unwrap()),
            bytes,
        })
    }

    /// Decides requests under `policy` in order (as an audit run would record them).
    fn observe(policy: &Policy, requests: Vec<Request>) -> ObservedRun {
        let mut audit = policy.clone();
        audit.mode.value = crate::model::Mode::Audit;
        let mut usage = Usage::default();
        let mut events = Vec::new();
        for (seq, request) in requests.into_iter().enumerate() {
            let d = audit.decide(&usage, &request);
            if d.permits() {
                match &request {
                    Request::Fs(r) if r.op == FsAccess::Read => usage.fs_read_bytes += r.bytes,
                    Request::Fs(r) if r.op == FsAccess::Write => usage.fs_write_bytes += r.bytes,
                    Request::Net(r) if r.op == NetAccess::Connect => usage.net_connections += 1,
                    Request::Net(r) if r.op == NetAccess::Send => usage.net_egress_bytes += r.bytes,
                    Request::Net(r) if r.op == NetAccess::Receive => {
                        usage.net_ingress_bytes += r.bytes
                    }
                    _ => {}
                }
            }
            let done = d.permits().then_some(request.bytes());
            let mut event = ObservedEvent::new(
                seq as u64,
                request.capability(),
                d.verdict,
                d.enforced,
                audit.rule_id(d.rule),
                d.reason,
                Some(request),
            );
            event.set_bytes_done(done);
            events.push(event);
        }
        ObservedRun {
            events,
            not_recorded: 0,
            usage,
            fuel_consumed: 12_345,
            peak_memory_bytes: 65_536,
            status: "completed".into(),
            message: "the plugin completed".into(),
        }
    }

    fn source() -> LearnSource {
        LearnSource {
            plugin_path: "plugin.wat".into(),
            plugin_sha256: "abc".into(),
            base_path: Some("base.yaml".into()),
            mount_hosts: vec!["/abs/data".into(), "/abs/out".into()],
        }
    }

    fn requests() -> Vec<Request> {
        vec![
            fs(FsAccess::Read, "/data/a.txt", 10),
            fs(FsAccess::Stat, "/data/secret/key", 0),
            fs(FsAccess::Read, "/data/secret/key", 5),
            fs(FsAccess::Create, "/out/new.log", 0),
            fs(FsAccess::Write, "/out//new.log", 100),
            fs(FsAccess::List, "/out", 0),
            fs(FsAccess::Stat, "/out/only-stat", 0),
            fs(FsAccess::Read, "/etc/passwd", 1),
            fs(FsAccess::Write, "/data/a.txt", 1),
            fs(FsAccess::Read, "/data/star*", 1),
            net(NetAccess::Connect, "Echo.Test.", 7000, Some("127.0.0.1"), 0),
            net(NetAccess::Send, "echo.test", 7000, Some("127.0.0.1"), 22),
            net(NetAccess::Receive, "echo.test", 7000, Some("127.0.0.1"), 22),
            net(NetAccess::Connect, "api.example.com", 443, None, 0),
            net(NetAccess::Connect, "evil.test", 80, Some("10.0.0.1"), 0),
        ]
    }

    #[test]
    fn a_base_entries_quota_is_learned_from_the_entries_created() {
        let mut base = base();
        base.filesystem.quotas.entries = Some(crate::model::Setting::default_value(1));
        let run = observe(
            &base,
            vec![
                fs(FsAccess::Create, "/out/a.log", 0),
                fs(FsAccess::Create, "/out/b.log", 0),
                fs(FsAccess::Create, "/out/c.log", 0),
                fs(FsAccess::Create, "/out/d.log", 0),
            ],
        );
        assert_eq!(QuotaNeeds::of(&run.events).entries, 4);
        let learned = learn(&base, &run, &source());
        let policy = parse_policy(&learned.text, Path::new("/")).unwrap();
        // Four created, plus 25%.
        assert_eq!(policy.filesystem.quotas.entries.map(|q| q.value), Some(5));
        assert!(
            learned.text.contains("4 entries created"),
            "{}",
            learned.text
        );
    }

    #[test]
    fn the_learned_policy_allows_every_grantable_request_and_nothing_next_to_them() {
        let base = base();
        let run = observe(&base, requests());
        let learned = learn(&base, &run, &source());
        let policy = parse_policy(&learned.text, Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}\n{}", learned.text));
        let lint = crate::lint::lint_policy_text(&learned.text, Path::new("/learned.yaml"));
        assert!(!lint.has_errors(), "{:?}", lint.findings);
        // Replayed in order under the learned policy: every grantable request is allowed,
        // the others keep a reason no rule can change.
        // The same events, without the bytes they moved.
        let mut events = run.events.clone();
        for e in &mut events {
            e.set_bytes_done(None);
        }
        let replay = crate::replay::replay(&policy, &events);
        for (event, again) in run.events.iter().zip(&replay.events) {
            let wanted = event.decision == Verdict::Allow || grantable(event.reason_code);
            let ok = again.new.decision == Verdict::Allow;
            let star = event.request.as_ref().map(target).as_deref() == Some("/data/star*");
            assert_eq!(ok, wanted && !star, "{event:?} -> {:?}", again.new);
            if !ok {
                assert!(!grantable(again.new.reason_code) || star, "{again:?}");
            }
        }
        let u = Usage::default();
        for neighbour in [
            fs(FsAccess::Read, "/data/b.txt", 1),
            fs(FsAccess::Read, "/data/secret/other", 1),
            fs(FsAccess::Write, "/out/new.log2", 1),
            fs(FsAccess::Delete, "/out/new.log", 0),
            fs(FsAccess::Read, "/out/only-stat/x", 0),
            fs(FsAccess::Write, "/out/only-stat", 1),
            fs(FsAccess::Read, "/data/starX", 1),
            net(NetAccess::Connect, "echo.test", 7001, Some("127.0.0.1"), 0),
            net(NetAccess::Connect, "echo2.test", 7000, None, 0),
            net(NetAccess::Connect, "127.0.0.2", 7000, None, 0),
            net(NetAccess::Connect, "x.api.example.com", 443, None, 0),
        ] {
            let d = policy.decide(&u, &neighbour);
            assert_eq!(d.verdict, Verdict::Deny, "{neighbour:?}");
        }
        assert_eq!(policy.mode.value, crate::model::Mode::Enforce);
        assert_eq!(policy.filesystem.mounts[0].host, "/abs/data");
        assert_eq!(
            policy.network.resolve.len(),
            1,
            "only the pin of a learned host"
        );
        assert_eq!(policy.env, vec![("LANG".to_owned(), "C".to_owned())]);
    }

    #[test]
    fn learned_rules_name_their_events_and_what_was_not_granted() {
        let base = base();
        let learned = learn(&base, &observe(&base, requests()), &source());
        let text = &learned.text;
        assert!(
            text.contains("    # events 0-2: fs.read, fs.stat\n"),
            "{text}"
        );
        assert!(
            text.contains("REVIEW: the base policy's deny rule `no-secrets` matched events 1, 2"),
            "{text}"
        );
        assert!(
            text.contains("ops: [write, create], paths: [\"/out/new.log\"]"),
            "{text}"
        );
        assert!(text.contains("ops: [list], paths: [\"/out\"]"), "{text}");
        assert!(
            text.contains("ops: [read], paths: [\"/data/a.txt\", \"/data/secret/key\"]"),
            "{text}"
        );
        // A stat alone is granted by `read`.
        assert!(
            text.contains(
                "{ id: read-out, effect: allow, ops: [read], paths: [\"/out/only-stat\"] }"
            ),
            "{text}"
        );
        assert!(
            text.contains("hosts: [\"echo.test\"], cidrs: [\"127.0.0.1/32\"], ports: [7000]"),
            "{text}"
        );
        assert!(
            text.contains("hosts: [\"api.example.com\"], ports: [443]"),
            "{text}"
        );
        assert!(
            text.contains("#   event 7: fs.read `/etc/passwd`: FS_PATH_OUTSIDE_MOUNTS"),
            "{text}"
        );
        assert!(
            text.contains("#   event 8: fs.write `/data/a.txt`: FS_READ_ONLY_MOUNT"),
            "{text}"
        );
        assert!(text.contains("#   event 14: net.connect `evil.test:80`: NET_ADDRESS_BLOCKED (the name and port are allowed; the address it resolved to stays blocked)"), "{text}");
        assert!(
            text.contains(
                "{ id: net-evil-test, effect: allow, hosts: [\"evil.test\"], ports: [80] }"
            ),
            "{text}"
        );
        assert!(
            text.contains("#   event 9: fs.read `/data/star*`: `/data/star*` has glob characters"),
            "{text}"
        );
        assert_eq!(
            learned.overridden,
            vec![("no-secrets".to_owned(), vec![1, 2])]
        );
        assert_eq!(learned.not_granted.len(), 4);
        assert!(learned.warnings.is_empty());
        // Quotas: used plus a quarter.
        assert!(
            text.contains(
                "quotas: { read_bytes: 20, write_bytes: 125 }   # the run needed 16 and 100 bytes; plus 25%"
            ),
            "{text}"
        );
        assert!(text.contains("fuel: 15_432"), "{text}");
        assert!(text.contains("memory_bytes: 128KiB"), "{text}");
    }

    #[test]
    fn guest_text_cannot_inject_policy_lines() {
        let base = base();
        let run = observe(
            &base,
            vec![
                fs(FsAccess::Read, "/data/x\nmode: audit", 1),
                fs(FsAccess::Read, "/etc/\u{2028}mode: audit", 1),
                net(NetAccess::Connect, "bad host\n\"", 1, None, 0),
            ],
        );
        let learned = learn(&base, &run, &source());
        let policy = parse_policy(&learned.text, Path::new("/")).unwrap();
        assert_eq!(policy.mode.value, crate::model::Mode::Enforce);
        assert_eq!(policy.filesystem.rules.len(), 1);
        assert_eq!(
            policy.filesystem.rules[0].paths[0].as_str(),
            "/data/x\nmode: audit"
        );
        for line in learned.text.lines() {
            assert!(!line.starts_with("mode: audit"), "{line}");
        }
    }

    #[test]
    fn quotas_cover_what_each_request_asked_not_only_what_moved() {
        let base = base();
        let mut run = observe(
            &base,
            vec![
                fs(FsAccess::Write, "/out/a.log", 100),
                fs(FsAccess::Write, "/out/b.log", 10),
                net(NetAccess::Connect, "echo.test", 7000, Some("127.0.0.1"), 0),
                net(
                    NetAccess::Receive,
                    "echo.test",
                    7000,
                    Some("127.0.0.1"),
                    4096,
                ),
                net(
                    NetAccess::Receive,
                    "echo.test",
                    7000,
                    Some("127.0.0.1"),
                    4096,
                ),
            ],
        );
        // The first write failed on the host: it moved nothing but asked for 100 bytes.
        run.events[0].set_bytes_done(None);
        run.events[3].set_bytes_done(Some(22));
        // The peer closed: a receive of nothing still needs room to be let through.
        run.events[4].set_bytes_done(Some(0));
        run.usage.fs_write_bytes = 10;
        run.usage.net_ingress_bytes = 22;
        let need = QuotaNeeds::of(&run.events);
        assert_eq!(need.write_bytes, 100);
        assert_eq!(need.connections, 1);
        assert_eq!(need.ingress_bytes, 23);
        let text = learn(&base, &run, &source()).text;
        assert!(text.contains("write_bytes: 125 }"), "{text}");
        assert!(text.contains("ingress_bytes: 29 }"), "{text}");
    }

    #[test]
    fn a_run_that_did_not_complete_is_a_warning_in_the_file() {
        let base = base();
        let mut run = observe(&base, vec![]);
        run.status = "fuel_exhausted".into();
        run.message = "the plugin used all 10 units of fuel".into();
        run.not_recorded = 3;
        let learned = learn(&base, &run, &source());
        assert_eq!(learned.warnings.len(), 2);
        assert!(learned
            .text
            .contains("# WARNING: the run ended `fuel_exhausted`"));
        assert!(parse_policy(&learned.text, Path::new("/")).is_ok());
    }

    #[test]
    fn the_strict_template_as_base_grants_nothing_and_still_parses() {
        let strict = parse_policy(
            crate::templates::template(crate::templates::Preset::Strict),
            Path::new("."),
        )
        .unwrap();
        let run = observe(&strict, vec![fs(FsAccess::Read, "/data/a", 1)]);
        let learned = learn(&strict, &run, &LearnSource::default());
        let policy = parse_policy(&learned.text, Path::new("/")).unwrap();
        assert!(policy.filesystem.mounts.is_empty() && policy.filesystem.rules.is_empty());
        assert!(learned.text.contains("FS_PATH_OUTSIDE_MOUNTS"));
        assert!(learned.text.contains("#   base:   the strict template"));
    }
}
