//! Profiles: the built-in default, and named TOML files in
//! `$XDG_CONFIG_HOME/sandlock/profiles/` (default `~/.config/sandlock/profiles/`).
//!
//! The **default profile** ([`DEFAULT_PROFILE`], compiled in) grants the
//! system directories read and execute, the usual character devices, no
//! network, the default deny list, and scopes signals and abstract unix
//! sockets to the sandbox. On top of the file, [`default_policy`] grants
//!
//! - `/etc` readable **minus its secrets** ([`ETC_SECRETS`]). Landlock
//!   cannot take a path out of a granted tree, so:
//!   - as root of the machine (with `CAP_SYS_ADMIN`), `/etc` is granted
//!     whole and each existing secret is **masked** (`fs_masked`: hidden
//!     by name, by a read-only overlay of `/etc` in the sandbox's mount
//!     namespace whose top layer holds a whiteout for each; about 0.5 ms
//!     at the start, where a rule for each of `/etc`'s other entries costs
//!     about 1 ms). A secret the host replaces while the sandbox runs
//!     (`passwd` renames a new `/etc/shadow` over the old one) stays
//!     hidden: the overlay looks the name up in its top layer first. Where
//!     a launch found those mounts refused ([`masks_refused`]): as in the
//!     next case;
//!   - as another user who could read a secret (a member of `shadow`...),
//!     `/etc`'s entries are granted one by one, leaving the secrets (and
//!     symlinks, whose targets are not followed) out;
//!   - when every secret is already unreadable by this process (the usual
//!     case for a normal user), `/etc` is granted whole: the file
//!     permissions withhold the secrets, and the sandbox cannot gain
//!     privileges (`PR_SET_NO_NEW_PRIVS`).
//! - the current directory readable, unless it is `/`.

use std::path::{Path, PathBuf};

use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags, RawDir};
use rustix::io::Errno;
use sandlock_policy::{Policy, PolicyBuilder};

use crate::error::Error;

/// The default profile, as compiled in.
pub const DEFAULT_PROFILE: &str = include_str!("default.toml");

/// `fs_readable` of [`DEFAULT_PROFILE`]. Every start builds the default
/// policy from these constants rather than parsing the TOML (about 40 µs
/// of cold parser code at each start); a unit test checks the two say the
/// same.
const DEFAULT_READABLE: &[&str] = &[
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/dev/random",
    "/dev/urandom",
];

/// `fs_writable` of [`DEFAULT_PROFILE`].
const DEFAULT_WRITABLE: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

/// `b` with the switches [`DEFAULT_PROFILE`] sets.
fn default_switches(b: PolicyBuilder) -> PolicyBuilder {
    b.no_raw_sockets(true)
        .isolate_signals(true)
        .isolate_ipc(true)
}

/// Paths under `/etc` (relative; `*` matches within one name) that the
/// default profile never grants: password hashes, sudo rules, private keys
/// of the host, TLS and VPN, stored Wi-Fi and Kerberos credentials.
pub const ETC_SECRETS: &[&str] = &[
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "sudoers",
    "sudoers.d",
    "security/opasswd",
    "ssh/ssh_host_*_key",
    "ssl/private",
    "pki/tls/private",
    "letsencrypt",
    "krb5.keytab",
    "ipsec.secrets",
    "ppp/chap-secrets",
    "ppp/pap-secrets",
    "NetworkManager/system-connections",
    "wpa_supplicant",
    "docker/key.json",
];

/// Whether a launch of this process found the mounts that mask paths
/// refused (root in a container whose security module forbids `mount`,
/// say), or a masked path shown elsewhere by another mount. The default profile then grants `/etc` entry by entry, as for a
/// user who could read a secret: a policy built again after such a
/// failure runs there. The `sandlock` command does that itself.
pub fn masks_refused() -> bool {
    crate::ns::masks_refused()
}

/// The default policy for this machine (see the module documentation).
pub fn default_policy() -> Result<Policy, Error> {
    default_builder(&[])?.build().map_err(Error::from)
}

/// The default profile as a builder, for flags to be layered on top.
/// `granted` lists paths the caller will grant anyway: when one of them
/// covers `/etc`, its entries are not granted one by one.
pub fn default_builder(granted: &[&str]) -> Result<PolicyBuilder, Error> {
    let existing =
        |paths: &'static [&'static str]| paths.iter().copied().filter(|p| Path::new(p).exists());
    let mut b = default_switches(Policy::builder());
    for p in existing(DEFAULT_READABLE) {
        b = b.fs_read(p);
    }
    for p in existing(DEFAULT_WRITABLE) {
        b = b.fs_write(p);
    }
    if !granted.iter().any(|g| covers(g, "/etc")) {
        let view = etc_view();
        for p in view.grants {
            b = b.fs_read(p);
        }
        for m in view.masks {
            if !touches(granted, &m) {
                b = b.fs_mask(m);
            }
        }
    }
    if let Ok(cwd) = std::env::current_dir()
        && cwd != Path::new("/")
    {
        b = b.fs_read(cwd.to_string_lossy().into_owned());
    }
    Ok(b)
}

/// [`default_builder`] for a sandbox whose root is the host directory
/// `root` (`chroot`): the paths are the new root's, inside it (those it
/// has), `/etc` is the root's (minus its secrets), and `workdir` (the
/// working directory inside) is granted readable in place of the current
/// directory, unless it is `/`.
pub fn default_builder_rooted(
    root: &Path,
    workdir: Option<&str>,
    granted: &[&str],
) -> Result<PolicyBuilder, Error> {
    let root = crate::newroot::NewRoot::open(root)?;
    let has = |p: &str| root.has(Path::new(p));
    let mut b = default_switches(Policy::builder());
    for &p in DEFAULT_READABLE {
        if has(p) {
            b = b.fs_read(p);
        }
    }
    for &p in DEFAULT_WRITABLE {
        if has(p) {
            b = b.fs_write(p);
        }
    }
    if !granted.iter().any(|g| covers(g, "/etc"))
        && let Ok(etc) = root.host(Path::new("/etc"))
    {
        let view = etc_view_in(&etc);
        for p in view.grants {
            if let Some(inside) = root.inside(Path::new(&p)) {
                b = b.fs_read(inside.to_string_lossy().into_owned());
            }
        }
        for m in view.masks {
            if let Some(inside) = root.inside(Path::new(&m)) {
                let inside = inside.to_string_lossy().into_owned();
                if !touches(granted, &inside) {
                    b = b.fs_mask(inside);
                }
            }
        }
    }
    // A working directory the root lacks is left for the launch to
    // report as `--workdir`'s.
    if let Some(w) = workdir
        && !w.trim_end_matches('/').is_empty()
        && has(w)
    {
        b = b.fs_read(w);
    }
    Ok(b)
}

/// Whether a path of `granted` covers `secret` or lies below it: the
/// caller asked for it, so it is not masked (as it is granted when `/etc`
/// is granted entry by entry).
fn touches(granted: &[&str], secret: &str) -> bool {
    granted
        .iter()
        .any(|g| covers(g, secret) || covers(secret, g))
}

/// Whether granting `outer` grants `inner` (same path or an ancestor, by
/// components).
fn covers(outer: &str, inner: &str) -> bool {
    let o: Vec<&str> = outer
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let i: Vec<&str> = inner
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    !o.contains(&"..") && i.starts_with(&o)
}

/// What the default profile shows of an `/etc`: the paths it grants
/// (readable) and the secrets it masks, as host paths.
#[derive(Debug, Default, PartialEq, Eq)]
struct EtcView {
    grants: Vec<String>,
    masks: Vec<String>,
}

/// What the default profile shows of `/etc`.
fn etc_view() -> EtcView {
    etc_view_in(Path::new("/etc"))
}

/// What the default profile shows of `etc` (the host's `/etc`, or a new
/// root's): see the module documentation.
fn etc_view_in(etc: &Path) -> EtcView {
    if !etc.exists() {
        return EtcView::default();
    }
    let whole = || vec![etc.to_string_lossy().into_owned()];
    if crate::ns::is_admin_root() && !crate::ns::masks_refused() {
        // Root mounts without a user namespace: `/etc` whole, and its
        // secrets hidden by an overlay (one mount namespace, about 0.5 ms),
        // rather than a Landlock rule for each of the hundred-odd other
        // entries (about 1 ms at each start: a descriptor and a rule each,
        // merged into the domain, freed at the end).
        let mut found = Vec::new();
        let mut complete = true;
        for s in ETC_SECRETS {
            secret_paths(etc, s, &mut found, &mut complete);
        }
        let masks: Option<Vec<String>> = found
            .into_iter()
            .map(|p| p.to_str().map(str::to_owned))
            .collect();
        // A secret that could not be named (not UTF-8, or not looked at):
        // `/etc` entry by entry below, which leaves out what it cannot name.
        if let (Some(masks), true) = (masks, complete) {
            return EtcView {
                grants: whole(),
                masks,
            };
        }
    }
    if secrets_unreadable(etc, ETC_SECRETS) {
        return EtcView {
            grants: whole(),
            masks: Vec::new(),
        };
    }
    let mut grants = Vec::new();
    expand(etc, ETC_SECRETS, &mut grants);
    EtcView {
        grants,
        masks: Vec::new(),
    }
}

/// Adds to `out` the existing paths under `dir` that `pattern` (relative,
/// `*` within a name) names, reached through no symbolic link: a secret
/// reached through one lies elsewhere, where its own path decides (a mount
/// would follow the link; `expand` leaves links out likewise). One
/// `lstat` a name, a listing only for a name with `*`.
fn secret_paths(dir: &Path, pattern: &str, out: &mut Vec<PathBuf>, complete: &mut bool) {
    let (first, rest) = match pattern.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (pattern, None),
    };
    let names: Vec<(String, FileType)> = if first.contains('*') {
        let (all, whole) = listing(dir);
        // A name the listing could not give (not UTF-8) could be a secret.
        *complete &= whole;
        all.into_iter().filter(|(n, _)| glob(first, n)).collect()
    } else {
        match rustix::fs::lstat(dir.join(first)) {
            Ok(st) => vec![(first.to_owned(), FileType::from_raw_mode(st.st_mode))],
            Err(Errno::NOENT | Errno::NOTDIR) => Vec::new(),
            Err(_) => {
                *complete = false;
                Vec::new()
            }
        }
    };
    for (name, ty) in names {
        let p = dir.join(name);
        match (rest, ty) {
            (_, FileType::Symlink) => {}
            (None, _) => out.push(p),
            (Some(r), FileType::Directory) => secret_paths(&p, r, out, complete),
            (Some(_), _) => {}
        }
    }
}

/// Whether every existing secret under `dir` is out of this process's
/// reach by file permissions alone.
fn secrets_unreadable(dir: &Path, secrets: &[&str]) -> bool {
    secrets.iter().all(|s| {
        if s.contains('*') {
            matching(dir, s).iter().all(|p| !reachable(p))
        } else {
            !reachable(&dir.join(s))
        }
    })
}

/// Whether this process could read `path` (a file) or open what it holds
/// by name (a directory it may search), by its permissions: readable, or
/// searchable. One `faccessat` for a path that does not exist or can be
/// read, two otherwise. A file that can be executed but not read, or an
/// error other than "no such file", counts as reachable: the answer errs
/// towards granting `/etc` entry by entry.
fn reachable(path: &Path) -> bool {
    let access = |mode| rustix::fs::accessat(rustix::fs::CWD, path, mode, AtFlags::EACCESS);
    match access(Access::READ_OK) {
        Ok(()) => true,
        Err(Errno::ACCESS) => access(Access::EXEC_OK).is_ok(),
        Err(Errno::NOENT | Errno::NOTDIR) => false,
        Err(_) => true,
    }
}

/// The existing paths under `dir` that `pattern` (relative, `*` within a
/// name) names.
fn matching(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut parts = pattern.splitn(2, '/');
    let (Some(first), rest) = (parts.next(), parts.next()) else {
        return Vec::new();
    };
    let names: Vec<String> = if first.contains('*') {
        entries(dir)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| glob(first, n))
            .collect()
    } else {
        vec![first.to_owned()]
    };
    let mut out = Vec::new();
    for n in names {
        let p = dir.join(&n);
        match rest {
            Some(rest) => out.extend(matching(&p, rest)),
            None if p.symlink_metadata().is_ok() => out.push(p),
            None => {}
        }
    }
    out
}

/// Grants `dir`'s entries one by one, leaving out the secrets (and going
/// into directories that hold one), and symlinks. Names that are not UTF-8
/// are left out too (a policy path is UTF-8): not granted, so closed.
fn expand(dir: &Path, secrets: &[&str], out: &mut Vec<String>) {
    let Some(base) = dir.to_str() else {
        return;
    };
    // Each secret split once: its first component, and the rest.
    let split: Vec<(&str, Option<&str>)> = secrets
        .iter()
        .map(|s| match s.split_once('/') {
            Some((f, r)) => (f, Some(r)),
            None => (*s, None),
        })
        .collect();
    let mut nested: Vec<&str> = Vec::new();
    for (name, ty) in entries(dir) {
        if ty == FileType::Symlink {
            continue;
        }
        nested.clear();
        let mut is_secret = false;
        for &(first, rest) in &split {
            if glob(first, &name) {
                match rest {
                    None => is_secret = true,
                    Some(r) => nested.push(r),
                }
            }
        }
        if is_secret {
            continue;
        }
        let mut path = String::with_capacity(base.len() + 1 + name.len());
        path.push_str(base);
        if !base.ends_with('/') {
            path.push('/');
        }
        path.push_str(&name);
        if !nested.is_empty() && ty == FileType::Directory {
            let inner = nested.clone();
            expand(Path::new(&path), &inner, out);
        } else {
            out.push(path);
        }
    }
}

/// The entries of `dir` (not `.` and `..`, nor names that are not UTF-8)
/// with their types, sorted by name; empty if it cannot be read. One
/// `getdents64` into a buffer for the usual directory: no allocation per
/// entry but its name (this runs at every start as root, on `/etc`).
fn entries(dir: &Path) -> Vec<(String, FileType)> {
    listing(dir).0
}

/// [`entries`], and whether they are all of them: `false` when the
/// directory could not be opened or read to its end, or held a name that
/// is not UTF-8 or whose type could not be learnt.
fn listing(dir: &Path) -> (Vec<(String, FileType)>, bool) {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(dir, flags, Mode::empty()) else {
        return (Vec::new(), false);
    };
    let mut buf: Vec<u8> = Vec::with_capacity(32 * 1024);
    let mut raw = RawDir::new(&fd, buf.spare_capacity_mut());
    let mut out = Vec::new();
    let mut complete = true;
    while let Some(entry) = raw.next() {
        let Ok(e) = entry else {
            complete = false;
            break;
        };
        let name = e.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let Ok(text) = name.to_str() else {
            complete = false;
            continue;
        };
        let ty = match e.file_type() {
            // A filesystem without types in its entries: ask.
            FileType::Unknown => match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode),
                Err(_) => {
                    complete = false;
                    continue;
                }
            },
            t => t,
        };
        out.push((text.to_owned(), ty));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    (out, complete)
}

/// Matches `name` against `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// The directory of named profiles: `$XDG_CONFIG_HOME/sandlock/profiles`,
/// else `$HOME/.config/sandlock/profiles`.
pub fn profile_dir() -> Result<PathBuf, Error> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| Error::Invalid {
            field: "profile",
            value: String::new(),
            why: "neither XDG_CONFIG_HOME nor HOME is set".to_owned(),
        })?;
    Ok(base.join("sandlock").join("profiles"))
}

/// The file of profile `name`, after checking the name.
pub fn profile_path(name: &str) -> Result<PathBuf, Error> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') || name.contains('\0') {
        return Err(Error::Invalid {
            field: "profile",
            value: name.to_owned(),
            why: "is not a profile name (no `/`, not starting with `.`)".to_owned(),
        });
    }
    Ok(profile_dir()?.join(format!("{name}.toml")))
}

/// The text of profile `name`.
pub fn read_profile(name: &str) -> Result<String, Error> {
    let path = profile_path(name)?;
    std::fs::read_to_string(&path)
        .map_err(Error::io(format!("profile {name} ({})", path.display())))
}

/// Profile `name` as a policy.
pub fn load_profile(name: &str) -> Result<Policy, Error> {
    Policy::from_toml(&read_profile(name)?).map_err(|source| Error::Profile {
        name: name.to_owned(),
        source,
    })
}

/// The names of the saved profiles, sorted.
pub fn list_profiles() -> Result<Vec<String>, Error> {
    let dir = profile_dir()?;
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir.display().to_string())(e)),
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".toml").map(str::to_owned)
        })
        .filter(|n| !n.is_empty() && !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// Deletes profile `name`.
pub fn delete_profile(name: &str) -> Result<(), Error> {
    let path = profile_path(name)?;
    std::fs::remove_file(&path).map_err(Error::io(format!("profile {name} ({})", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants the default policy is built from say what
    /// `default.toml` says: the same policy, key for key.
    #[test]
    fn the_constants_are_the_default_profile() {
        let mut table: toml::Table = DEFAULT_PROFILE.parse().unwrap();
        let mut list = |key: &str| -> Vec<String> {
            match table.remove(key) {
                Some(toml::Value::Array(a)) => a
                    .into_iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect(),
                other => panic!("{key}: {other:?}"),
            }
        };
        assert_eq!(list("fs_readable"), DEFAULT_READABLE);
        assert_eq!(list("fs_writable"), DEFAULT_WRITABLE);
        let from_toml = Policy::builder().apply_table(&table).unwrap();
        let from_consts = default_switches(Policy::builder());
        assert_eq!(
            from_consts.build().unwrap().to_toml(),
            from_toml.build().unwrap().to_toml()
        );
        // Every key the file sets is one of the above.
        let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["isolate_ipc", "isolate_signals", "no_raw_sockets"]);
    }

    #[test]
    fn glob_and_covers() {
        assert!(glob("ssh_host_*_key", "ssh_host_ed25519_key"));
        assert!(!glob("ssh_host_*_key", "ssh_host_ed25519_key.pub"));
        assert!(glob("shadow", "shadow") && !glob("shadow", "shadow-"));
        assert!(covers("/", "/etc") && covers("/etc/", "/etc") && !covers("/etc/ssh", "/etc"));
        assert!(!covers("/etcetera", "/etc") && !covers("/usr/../etc", "/etc"));
    }

    #[test]
    fn expansion_leaves_secrets_and_symlinks_out() {
        let root = std::env::temp_dir().join(format!("sandlock-etc-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["ssh", "ssl/private", "ssl/certs"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "passwd",
            "shadow",
            "ssh/ssh_config",
            "ssh/ssh_host_rsa_key",
            "ssh/ssh_host_rsa_key.pub",
            "ssl/certs/ca.pem",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        std::os::unix::fs::symlink("/", root.join("link")).unwrap();
        // A name that is not UTF-8 cannot be a policy path: left out.
        use std::os::unix::ffi::OsStrExt;
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x").unwrap();
        let mut out = Vec::new();
        expand(&root, ETC_SECRETS, &mut out);
        let rel: Vec<String> = out
            .iter()
            .map(|p| p.strip_prefix(root.to_str().unwrap()).unwrap().to_owned())
            .collect();
        assert_eq!(
            rel,
            [
                "/passwd",
                "/ssh/ssh_config",
                "/ssh/ssh_host_rsa_key.pub",
                "/ssl/certs"
            ]
        );
        let found: Vec<PathBuf> = matching(&root, "ssh/ssh_host_*_key");
        assert_eq!(found, [root.join("ssh/ssh_host_rsa_key")]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn secrets_to_mask_are_found_through_no_link() {
        let root = std::env::temp_dir().join(format!("sandlock-etc-masks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["ssh", "ssl/private", "other"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "shadow",
            "ssh/ssh_host_ed25519_key",
            "ssh/ssh_host_ed25519_key.pub",
            "other/chap-secrets",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        // A secret that is a link, and one reached through a linked directory.
        std::os::unix::fs::symlink("shadow", root.join("gshadow")).unwrap();
        std::os::unix::fs::symlink("other", root.join("ppp")).unwrap();
        let mut out = Vec::new();
        let mut complete = true;
        for s in ETC_SECRETS {
            secret_paths(&root, s, &mut out, &mut complete);
        }
        assert!(complete);
        assert_eq!(
            out,
            [
                root.join("shadow"),
                root.join("ssh/ssh_host_ed25519_key"),
                root.join("ssl/private"),
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// As root, a secret whose name is not UTF-8 cannot be a masked path (a
    /// policy path is UTF-8): `/etc` is then granted entry by entry, which
    /// leaves such names out, rather than whole.
    #[test]
    fn a_secret_that_cannot_be_named_turns_masks_into_entries() {
        if !crate::ns::is_admin_root() {
            return;
        }
        use std::os::unix::ffi::OsStrExt;
        let root =
            std::env::temp_dir().join(format!("sandlock-etc-unnamed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("ssh")).unwrap();
        std::fs::write(root.join("shadow"), "x").unwrap();
        std::fs::write(root.join("passwd"), "x").unwrap();
        let view = etc_view_in(&root);
        assert_eq!(view.grants, [root.to_str().unwrap()]);
        assert_eq!(view.masks, [root.join("shadow").to_str().unwrap()]);
        let odd = std::ffi::OsStr::from_bytes(b"ssh_host_\xff_key");
        std::fs::write(root.join("ssh").join(odd), "x").unwrap();
        let view = etc_view_in(&root);
        assert!(view.masks.is_empty(), "{view:?}");
        let rel: Vec<&str> = view
            .grants
            .iter()
            .map(|p| p.strip_prefix(root.to_str().unwrap()).unwrap())
            .collect();
        assert_eq!(rel, ["/passwd"], "{view:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
