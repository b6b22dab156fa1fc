//! The command's environment.
//!
//! - With `clean_env`: only `PATH`, `LANG` and `TERM` (the caller's values,
//!   or `PATH=/usr/local/bin:/usr/bin:/bin` and `LANG=C.UTF-8` when unset),
//!   and `HOME` set to the sandbox's private temporary directory.
//! - Without it: the caller's environment minus the variables that commonly
//!   carry secrets or change how programs load ([`is_secret`]).
//! - Then `TMPDIR` points at the private temporary directory (when there is
//!   one), and the policy's `env` entries are applied last: a variable the
//!   user passes explicitly is kept even if it looks like a secret.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sandlock_policy::Policy;

/// `PATH` when the caller has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Exact names dropped from an inherited environment.
pub const SECRET_NAMES: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "XAUTHORITY",
    "KRB5CCNAME",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
];
/// Name prefixes dropped from an inherited environment.
pub const SECRET_PREFIXES: &[&str] = &["AWS_"];
/// Name suffixes dropped from an inherited environment.
pub const SECRET_SUFFIXES: &[&str] = &["_TOKEN", "_KEY", "_PASSWORD", "_PASSWD", "_CREDENTIALS"];
/// Name parts dropped from an inherited environment.
pub const SECRET_INFIXES: &[&str] = &["_SECRET", "SECRET_"];

/// Whether an inherited variable is dropped by default (names compared in
/// upper case): the exact names of [`SECRET_NAMES`], and names that start
/// with [`SECRET_PREFIXES`], end with [`SECRET_SUFFIXES`] or contain
/// [`SECRET_INFIXES`].
///
/// The patterns are ASCII, so comparing the name's bytes ignoring ASCII
/// case is the same as comparing its upper-case text (bytes that are not
/// ASCII never match), without building that text for every variable.
pub fn is_secret(name: &OsStr) -> bool {
    let name = name.as_bytes();
    let same = |part: &[u8], pattern: &str| part.eq_ignore_ascii_case(pattern.as_bytes());
    SECRET_NAMES.iter().any(|n| same(name, n))
        || SECRET_PREFIXES
            .iter()
            .any(|p| name.get(..p.len()).is_some_and(|part| same(part, p)))
        || SECRET_SUFFIXES.iter().any(|s| {
            name.len()
                .checked_sub(s.len())
                .is_some_and(|at| same(&name[at..], s))
        })
        || SECRET_INFIXES
            .iter()
            .any(|s| !s.is_empty() && name.windows(s.len()).any(|part| same(part, s)))
}

/// The command's environment, from the caller's (`inherited`), the policy,
/// and the private temporary directory.
pub(crate) fn build(
    policy: &Policy,
    inherited: impl Iterator<Item = (OsString, OsString)>,
    tmp: Option<&Path>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    if policy.clean_env() {
        let inherited: Vec<_> = inherited.collect();
        let get = |k: &str| {
            inherited
                .iter()
                .find(|(n, _)| n.as_bytes() == k.as_bytes())
                .map(|(_, v)| v.clone())
        };
        env.push((
            "PATH".into(),
            get("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        ));
        env.push((
            "LANG".into(),
            get("LANG").unwrap_or_else(|| "C.UTF-8".into()),
        ));
        if let Some(term) = get("TERM") {
            env.push(("TERM".into(), term));
        }
        if let Some(tmp) = tmp {
            env.push(("HOME".into(), tmp.as_os_str().to_owned()));
        }
    } else {
        env.extend(inherited.filter(|(k, _)| !is_secret(k)));
    }
    if let Some(tmp) = tmp {
        set(&mut env, "TMPDIR".into(), tmp.as_os_str().to_owned());
    }
    for var in policy.env() {
        set(&mut env, var.key().into(), var.value().into());
    }
    env
}

fn set(env: &mut Vec<(OsString, OsString)>, key: OsString, value: OsString) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}

/// Puts `lib` first in `LD_PRELOAD` (before what the policy's `env` set,
/// which is kept).
pub(crate) fn preload(env: &mut Vec<(OsString, OsString)>, lib: &Path) {
    let mut value = lib.as_os_str().to_owned();
    if let Some((_, given)) = env.iter().find(|(k, _)| k == "LD_PRELOAD")
        && !given.is_empty()
    {
        value.push(":");
        value.push(given);
    }
    set(env, "LD_PRELOAD".into(), value);
}

/// The value of `PATH` in `env`, or [`DEFAULT_PATH`].
pub(crate) fn path_of(env: &[(OsString, OsString)]) -> OsString {
    env.iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| DEFAULT_PATH.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (OsString, OsString)> {
        list.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn secrets_are_dropped_unless_passed() {
        let policy = Policy::builder().env("GITHUB_TOKEN=given").build().unwrap();
        let env = build(
            &policy,
            vars(&[
                ("HOME", "/root"),
                ("GITHUB_TOKEN", "t"),
                ("AWS_REGION", "x"),
                ("db_password", "p"),
                ("MY_SECRET_THING", "s"),
                ("SSH_AUTH_SOCK", "/run/ssh"),
                ("LD_PRELOAD", "/evil.so"),
                ("KEYBOARD", "ok"),
            ]),
            None,
        );
        let names: Vec<_> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["HOME", "KEYBOARD", "GITHUB_TOKEN"]);
        assert_eq!(env[2].1, "given");
    }

    /// The rule as documented: the name's upper-case text against the
    /// patterns (what `is_secret` computes without building that text).
    fn by_upper_case_text(name: &OsStr) -> bool {
        let upper = name.to_string_lossy().to_ascii_uppercase();
        SECRET_NAMES.contains(&upper.as_str())
            || SECRET_PREFIXES.iter().any(|p| upper.starts_with(p))
            || SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
            || SECRET_INFIXES.iter().any(|s| upper.contains(s))
    }

    #[test]
    fn secret_names_by_bytes_as_by_upper_case_text() {
        let mut names: Vec<Vec<u8>> = [
            "",
            "_",
            "AWS",
            "aws_",
            "Aws_Region",
            "xAWS_",
            "ssh_auth_sock",
            "SSH_AUTH_SOCKET",
            "_KEY",
            "KEY",
            "api_key",
            "a_KeY",
            "my_passwd",
            "PASSWORD",
            "X_CREDENTIALS",
            "SECRET",
            "_secret",
            "secret_",
            "TOP_SECRET_X",
            "LD_PRELOAD",
            "ld_audit",
            "LD_AUDITX",
            "KEYBOARD",
            "HOME",
            "GITHUB_TOKEN",
            "TOKEN",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // Bytes that are not UTF-8 or not ASCII, around the patterns.
        for raw in [
            &b"\xffAWS_X"[..],
            b"AWS_\xff",
            b"X\xff_TOKEN",
            b"\xff_secret\xfe",
            b"\xc3\xa9_KEY",
            b"_\xffKEY",
            b"SECRE\xffT_",
        ] {
            names.push(raw.to_vec());
        }
        for name in &names {
            let name = OsStr::from_bytes(name);
            assert_eq!(is_secret(name), by_upper_case_text(name), "{name:?}");
        }
    }

    #[test]
    fn the_seed_library_goes_first_in_ld_preload() {
        let lib = Path::new("/tmp/sandlock-0/libsandlock-seed-1.so");
        let mut env = vec![("A".into(), "1".into())];
        preload(&mut env, lib);
        assert_eq!(env[1], ("LD_PRELOAD".into(), lib.as_os_str().to_owned()));
        let mut env = vec![("LD_PRELOAD".into(), "/x.so".into())];
        preload(&mut env, lib);
        assert_eq!(env[0].1, "/tmp/sandlock-0/libsandlock-seed-1.so:/x.so");
    }

    #[test]
    fn clean_env_keeps_path_lang_term_and_sets_home() {
        let policy = Policy::builder()
            .clean_env(true)
            .env("A=1")
            .build()
            .unwrap();
        let env = build(
            &policy,
            vars(&[("PATH", "/bin"), ("TERM", "xterm"), ("USER", "me")]),
            Some(Path::new("/tmp/sb")),
        );
        let got: Vec<_> = env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        assert_eq!(
            got,
            [
                "PATH=/bin",
                "LANG=C.UTF-8",
                "TERM=xterm",
                "HOME=/tmp/sb",
                "TMPDIR=/tmp/sb",
                "A=1"
            ]
        );
    }
}
