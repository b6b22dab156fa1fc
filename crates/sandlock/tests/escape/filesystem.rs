//! Attack class 5: the filesystem rules (`fs.c`).
//!
//! Every scenario runs in a scratch tree owned by the attacking user, so
//! plain permissions never stand in the way — only the sandbox does:
//!
//! ```text
//! ro/data, ro/sub/f      granted read-only (-r ro)
//! rw/                    granted read-write (-w rw)
//! rw/link-out -> ../outside/target
//! outside/target         not granted at all
//! ```
//!
//! The whole tree's state (bytes, names, link counts, marker files) is
//! compared before and after each attack.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use crate::checks::{Bare, sysctl, verdict};
use crate::harness::{Attack, Mode, Scratch, User};
use crate::observe::Pty;

escape_tests!(run:
    write_outside,
    create_outside,
    write_through_symlink,
    write_through_dotdot,
    write_read_only_file,
    truncate_read_only,
    o_trunc_read_only,
    rename_out_of_read_only,
    rename_dir_out_of_read_only,
    exchange_with_read_only,
    link_out_of_read_only,
    proc_self_root_spellings,
    memfd_exec,
    execveat_o_path,
    device_ioctl_read_only,
    chroot_climb_out,
    unmask_a_masked_file,
);

struct Tree {
    scratch: Scratch,
    ro: PathBuf,
    rw: PathBuf,
    outside: PathBuf,
}

impl Tree {
    fn new(user: User) -> Tree {
        let scratch = Scratch::new(user);
        let ro = scratch.dir("ro");
        scratch.file("ro/data", "original-ro");
        scratch.dir("ro/sub");
        scratch.file("ro/sub/f", "original-sub");
        let rw = scratch.dir("rw");
        scratch.file("rw/mine", "mine");
        let outside = scratch.dir("outside");
        scratch.file("outside/target", "original-out");
        let link = rw.join("link-out");
        symlink("../outside/target", &link).unwrap();
        lchown(&link, Some(user.uid()), Some(user.uid())).unwrap();
        Tree {
            scratch,
            ro,
            rw,
            outside,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.scratch.join(rel)
    }

    /// Everything an attack could have changed, as one comparable string.
    fn state(&self) -> String {
        let mut out = String::new();
        walk(self.scratch.path(), self.scratch.path(), &mut out);
        out
    }

    /// `fs MODE ARGS` under `-r ro -w rw`.
    fn attack(&self, mode: Mode, attack: &str) -> Attack {
        Attack::new(mode, "fs", attack)
            .flag("-r")
            .flag(&self.ro)
            .flag("-w")
            .flag(&self.rw)
    }
}

fn walk(root: &Path, p: &Path, out: &mut String) {
    let Ok(meta) = fs::symlink_metadata(p) else {
        return;
    };
    let rel = p.strip_prefix(root).unwrap_or(p).display().to_string();
    if meta.is_dir() {
        out.push_str(&format!("{rel}/ "));
        let mut entries: Vec<_> = fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            walk(root, &e, out);
        }
    } else if meta.file_type().is_symlink() {
        out.push_str(&format!("{rel}@{} ", fs::read_link(p).unwrap().display()));
    } else {
        let body = fs::read_to_string(p).unwrap_or_else(|_| "<binary>".into());
        out.push_str(&format!("{rel}[{}]={body:?} ", meta.nlink()));
    }
}

/// Run one attack on a fresh tree; the verdict is on any change of state.
fn tree_attack(mode: Mode, what: &str, build: impl FnOnce(&Tree) -> Attack) {
    let tree = Tree::new(mode.user());
    let before = tree.state();
    let out = build(&tree).run("");
    let after = tree.state();
    let what = format!("{what}\nbefore: {before}\nafter:  {after}");
    verdict(mode, Bare::Works, before != after, &what, &out);
}

fn write_outside(mode: Mode) {
    tree_attack(mode, "writing a file outside every grant", |t| {
        t.attack(mode, "write").arg(t.outside.join("target"))
    });
}

fn create_outside(mode: Mode) {
    tree_attack(mode, "creating a file outside every grant", |t| {
        t.attack(mode, "create").arg(t.outside.join("new"))
    });
}

fn write_through_symlink(mode: Mode) {
    tree_attack(mode, "writing outside through a symlink in rw", |t| {
        t.attack(mode, "write").arg(t.rw.join("link-out"))
    });
}

fn write_through_dotdot(mode: Mode) {
    tree_attack(mode, "writing outside through rw/..", |t| {
        t.attack(mode, "write").arg(t.rw.join("../outside/target"))
    });
}

fn write_read_only_file(mode: Mode) {
    tree_attack(mode, "writing a read-only file", |t| {
        t.attack(mode, "write").arg(t.ro.join("data"))
    });
}

fn truncate_read_only(mode: Mode) {
    tree_attack(mode, "truncate(2) of a read-only file", |t| {
        t.attack(mode, "truncate").arg(t.ro.join("data"))
    });
}

fn o_trunc_read_only(mode: Mode) {
    tree_attack(mode, "open(O_TRUNC) of a read-only file", |t| {
        t.attack(mode, "otrunc").arg(t.ro.join("data"))
    });
}

fn rename_out_of_read_only(mode: Mode) {
    tree_attack(mode, "renaming a read-only file into rw", |t| {
        t.attack(mode, "rename")
            .arg(t.ro.join("data"))
            .arg(t.rw.join("stolen"))
    });
}

fn rename_dir_out_of_read_only(mode: Mode) {
    tree_attack(mode, "renaming a read-only directory into rw", |t| {
        t.attack(mode, "rename")
            .arg(t.ro.join("sub"))
            .arg(t.rw.join("sub"))
    });
}

fn exchange_with_read_only(mode: Mode) {
    tree_attack(
        mode,
        "RENAME_EXCHANGE of a read-only file with a rw one",
        |t| {
            t.attack(mode, "exchange")
                .arg(t.ro.join("data"))
                .arg(t.rw.join("mine"))
        },
    );
}

fn link_out_of_read_only(mode: Mode) {
    tree_attack(
        mode,
        "hard-linking a read-only file into rw and writing it",
        |t| {
            t.attack(mode, "link")
                .arg(t.ro.join("data"))
                .arg(t.rw.join("hard"))
        },
    );
}

fn proc_self_root_spellings(mode: Mode) {
    tree_attack(
        mode,
        "writing outside through /proc magic links and dirfds",
        |t| {
            t.attack(mode, "proc-spellings")
                .arg(t.outside.join("target"))
                .arg(&t.rw)
                .arg("../outside/target")
        },
    );
}

fn memfd_exec(mode: Mode) {
    let bare = match sysctl("vm.memfd_noexec").as_deref() {
        Some("2") => Bare::Impossible("vm.memfd_noexec is 2"),
        _ => Bare::Works,
    };
    let tree = Tree::new(mode.user());
    let ran = tree.path("rw/ran");
    let out = tree
        .attack(mode, "memfd-exec")
        .arg(crate::harness::bins().prog("helpers"))
        .arg(&ran)
        .run("");
    let what = "executing a program from a memfd (execveat AT_EMPTY_PATH, /proc/self/fd)";
    verdict(mode, bare, ran.exists(), what, &out);
}

fn execveat_o_path(mode: Mode) {
    let tree = Tree::new(mode.user());
    let prog = tree.scratch.program("outside/marker", "helpers");
    let ran = tree.path("rw/ran");
    let out = tree.attack(mode, "execveat").arg(&prog).arg(&ran).run("");
    let what = "execveat(O_PATH fd, AT_EMPTY_PATH) of a program outside the grants";
    verdict(mode, Bare::Works, ran.exists(), what, &out);
}

/// A terminal granted read-only (`-r /dev/pts`): TIOCSWINSZ is a device
/// ioctl that needs more than read access (Landlock's ioctl_dev, ABI 5).
fn device_ioctl_read_only(mode: Mode) {
    let pty = Pty::open(mode.user());
    let before = pty.winsize();
    let out = Attack::new(mode, "fs", "ioctl-winsize")
        .arg(pty.slave_path())
        .flag("-r")
        .flag("/dev/pts")
        .run("");
    let after = pty.winsize();
    let what = format!("TIOCSWINSZ on a read-only terminal: {before:?} -> {after:?}");
    verdict(mode, Bare::Works, before != after, &what, &out);
}

/// The classic way out of a chroot (a second `chroot` below the working
/// directory, then `..` up from it), to append to a host file next to the
/// root. Bare: the attacker in a plain chroot (`unshare -U -r --root`: root
/// of its own user namespace, as uid 65534 too); sandboxed: `--chroot`
/// with the root's `/tmp` writable.
fn chroot_climb_out(mode: Mode) {
    let user = mode.user();
    let scratch = Scratch::new(user);
    let root = scratch.dir("root");
    scratch.dir("root/bin");
    let prog = scratch.join("root/bin/fs");
    fs::copy(crate::programs::bins().prog("fs"), &prog).unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
    scratch.dir("root/tmp");
    scratch.dir("outside");
    let target = scratch.file("outside/target", "original-out");
    let before = fs::read_to_string(&target).unwrap();
    let mut attack = Attack::new(mode, "fs", "chroot-climb")
        .prog_at("/bin/fs")
        .arg(&target)
        .flag("--chroot")
        .flag(&root)
        .flag("-w")
        .flag("/tmp");
    if !mode.sandboxed() {
        let root_opt = format!("--root={}", root.display());
        attack = attack.wrapped(&["/usr/bin/unshare", "-U", "-r", &root_opt, "--"]);
    }
    let out = attack.run("");
    let after = fs::read_to_string(&target).unwrap();
    let what = format!("climbing out of a chroot to write {}", target.display());
    verdict(mode, Bare::Works, before != after, &what, &out);
}

/// A masked file (`--fs-mask`: hidden by a read-only overlay of its
/// directory in the sandbox's mount namespace): unmount the mask, the
/// file's and its directory's, and read what is under it. Bare: the
/// attacker under a mask made by `unshare -U -r -m` and `mount --bind` of
/// `/dev/null` over the file (root of its own user namespace, as uid
/// 65534 too), which it can unmount; sandboxed: `umount2` is refused (the
/// deny list; uid 65534 has no capability either) and the file is not
/// found.
fn unmask_a_masked_file(mode: Mode) {
    let user = mode.user();
    let scratch = Scratch::new(user);
    scratch.dir("ro");
    let secret = scratch.file("ro/secret", "SECRET-bytes");
    let mut attack = Attack::new(mode, "fs", "mask-reveal")
        .arg(&secret)
        .flag("-r")
        .flag(scratch.join("ro"))
        .flag("--fs-mask")
        .flag(&secret);
    if !mode.sandboxed() {
        let bind = "mount --bind /dev/null \"$1\" && shift && exec \"$@\"";
        attack = attack.wrapped(&[
            OsStr::new("/usr/bin/unshare"),
            OsStr::new("-U"),
            OsStr::new("-r"),
            OsStr::new("-m"),
            OsStr::new("--propagation"),
            OsStr::new("private"),
            OsStr::new("/bin/sh"),
            OsStr::new("-c"),
            OsStr::new(bind),
            OsStr::new("sh"),
            secret.as_os_str(),
        ]);
    }
    let out = attack.run("");
    let leaked = out.lines.iter().any(|l| l == "LEAK");
    let what = format!("reading {} under its mask", secret.display());
    verdict(mode, Bare::Works, leaked, &what, &out);
}
