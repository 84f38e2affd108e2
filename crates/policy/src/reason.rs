//! The stable reason codes carried by every event. Documented in `docs/reason-codes.md`;
//! a code, once shipped, keeps its meaning.

use serde::{Deserialize, Serialize};

macro_rules! reason_codes {
    ($($variant:ident = $code:literal : $meaning:literal, $fix:literal;)*) => {
        /// Why a decision came out the way it did.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ReasonCode {
            $(#[serde(rename = $code)] #[doc = $meaning] $variant,)*
        }

        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)*];

            /// The code as written in reports, e.g. `FS_PATH_NOT_ALLOWED`.
            pub fn as_str(self) -> &'static str {
                match self { $(ReasonCode::$variant => $code,)* }
            }

            /// What the code means, in a sentence.
            pub fn meaning(self) -> &'static str {
                match self { $(ReasonCode::$variant => $meaning,)* }
            }

            /// What a person can do about it.
            pub fn remedy(self) -> &'static str {
                match self { $(ReasonCode::$variant => $fix,)* }
            }

            pub fn parse(text: &str) -> Option<ReasonCode> {
                match text { $($code => Some(ReasonCode::$variant),)* _ => None }
            }
        }
    };
}

reason_codes! {
    Allowed = "ALLOWED":
        "a rule allowed the request and it fit within every quota",
        "nothing to do";
    FsPathNotAllowed = "FS_PATH_NOT_ALLOWED":
        "no allow rule covers this operation on this path, or a deny rule matched it",
        "add an allow rule for the operation and path (a deny rule always wins; remove or narrow it first)";
    FsPathOutsideMounts = "FS_PATH_OUTSIDE_MOUNTS":
        "the path, as asked or as resolved through symlinks and `..`, lies outside every mount; no rule can grant it",
        "mount the host folder that holds it, or have the plugin use a path beneath an existing mount";
    FsPathInvalid = "FS_PATH_INVALID":
        "the path is empty, too long, not UTF-8 or contains a NUL byte",
        "fix the plugin: no policy change can allow an invalid path";
    FsReadOnlyMount = "FS_READ_ONLY_MOUNT":
        "the operation changes files but the mount is read-only",
        "set the mount's `mode: rw` if the plugin should change files there";
    FsReadQuotaExceeded = "FS_READ_QUOTA_EXCEEDED":
        "reading these bytes would cross the run's read quota",
        "raise `filesystem.quotas.read_bytes`, or have the plugin read less";
    FsWriteQuotaExceeded = "FS_WRITE_QUOTA_EXCEEDED":
        "writing these bytes would cross the run's write quota",
        "raise `filesystem.quotas.write_bytes`, or have the plugin write less";
    FsOpenFilesExceeded = "FS_OPEN_FILES_EXCEEDED":
        "the plugin holds as many open files as `limits.open_files` allows",
        "raise `limits.open_files`, or have the plugin close files it no longer needs";
    FsLinkTargetOutsideMount = "FS_LINK_TARGET_OUTSIDE_MOUNT":
        "a link's target is absolute, has a `..` component, or names a path outside the link's own mount or inside another mount",
        "fix the plugin: write link targets relative to the link's folder, beneath it and within its mount";
    FsEntriesQuotaExceeded = "FS_ENTRIES_QUOTA_EXCEEDED":
        "creating one more file, directory or link would cross the run's entries quota",
        "raise `filesystem.quotas.entries`, or have the plugin create fewer files";
    NetHostNotAllowed = "NET_HOST_NOT_ALLOWED":
        "no network rule allows this host, or a deny rule matched it",
        "add the host (or a CIDR for an address) to a network allow rule";
    NetHostInvalid = "NET_HOST_INVALID":
        "the host name is empty, too long, has an empty label (`a..b`) or a character no host name has; it is never looked up",
        "fix the plugin: no policy change can allow an invalid host name";
    NetPortNotAllowed = "NET_PORT_NOT_ALLOWED":
        "a rule allows the host but not this port",
        "add the port to the `ports` of the rule that allows the host";
    NetAddressBlocked = "NET_ADDRESS_BLOCKED":
        "the address is loopback, private, link-local, multicast, unspecified or cloud metadata, and no rule names it explicitly",
        "allow the address with a rule that lists its CIDR, if reaching it is really intended";
    NetConnectionQuotaExceeded = "NET_CONNECTION_QUOTA_EXCEEDED":
        "the run has opened as many connections as `network.quotas.connections` allows",
        "raise `network.quotas.connections`";
    NetEgressQuotaExceeded = "NET_EGRESS_QUOTA_EXCEEDED":
        "sending these bytes would cross the run's egress quota",
        "raise `network.quotas.egress_bytes`";
    NetIngressQuotaExceeded = "NET_INGRESS_QUOTA_EXCEEDED":
        "receiving more bytes would cross the run's ingress quota",
        "raise `network.quotas.ingress_bytes`";
    EnvNotAllowed = "ENV_NOT_ALLOWED":
        "a variable the policy's `env` does not set was about to reach the plugin; the host's environment never does",
        "set the variable in the policy's `env` if the plugin should see it";
    HandleInvalid = "HANDLE_INVALID":
        "the plugin used a handle that is not open in this run",
        "fix the plugin: the handle was closed, never opened, or forged";
    BadGuestPointer = "BAD_GUEST_POINTER":
        "a host call passed a pointer or length outside the plugin's memory",
        "fix the plugin: no policy change can allow it";
    FuelExhausted = "FUEL_EXHAUSTED":
        "the plugin used all the fuel (CPU budget) the policy grants",
        "raise `budgets.fuel` if the work is legitimate";
    Timeout = "TIMEOUT":
        "the plugin ran longer than the wall-clock budget",
        "raise `budgets.timeout_ms` if the work is legitimate";
    MemoryLimit = "MEMORY_LIMIT":
        "the plugin asked for more linear memory, table space or instances than the policy grants",
        "raise `budgets.memory_bytes` if the plugin really needs it";
    Trapped = "TRAPPED":
        "the plugin trapped (an unreachable, a bad memory access, a stack overflow, or `on_deny: trap`)",
        "read the trap message; fix the plugin, or the policy if a deny ended the run";
    Cancelled = "CANCELLED":
        "the run was cancelled from outside (SIGINT or SIGTERM to `run`, or an embedder's cancel handle)",
        "nothing in the policy: run the plugin again if the work is still wanted";
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ReasonCode;

    #[test]
    fn codes_round_trip_through_text_and_json() {
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(!code.meaning().is_empty() && !code.remedy().is_empty());
        }
    }
}
