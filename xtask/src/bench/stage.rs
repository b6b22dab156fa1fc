//! The stage: a world-readable scratch tree holding the compiled workloads,
//! the files they open, and the sandboxes' writable directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace;

/// The C workloads in `benches/workloads/`, compiled with `gcc -O2`.
pub const WORKLOADS: &[&str] = &[
    "openloop",
    "forkloop",
    "connectloop",
    "allocloop",
    "clockloop",
    "randloop",
];

/// The scratch tree (removed on drop).
#[derive(Debug)]
pub struct Stage {
    /// `/tmp/sandlock-bench-<pid>`: the workloads' working directory.
    pub root: PathBuf,
    /// Compiled workloads.
    pub bin: PathBuf,
    /// Readable data (`-r`).
    pub data: PathBuf,
    /// The file the open loops open.
    pub file: PathBuf,
    /// A directory inside `data` that the deny scenario closes.
    pub secret: PathBuf,
    /// A file inside `secret` (the deny probe tries it).
    pub secret_file: PathBuf,
    /// Writable scratch (sandlock's private temp dir stand-in).
    pub tmp: PathBuf,
    /// redis-server's working directory (writable).
    pub redis: PathBuf,
    /// Where the runner keeps stdout/stderr of each run (outside any rule).
    pub runs: PathBuf,
}

impl Stage {
    /// Creates the tree and compiles the workloads into it.
    pub fn create() -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!("sandlock-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data = root.join("data");
        let secret = data.join("secret");
        let stage = Self {
            bin: root.join("bin"),
            file: data.join("file"),
            secret_file: secret.join("file"),
            secret,
            data,
            tmp: root.join("tmp"),
            redis: root.join("redis"),
            runs: std::env::temp_dir().join(format!("sandlock-bench-runs-{}", std::process::id())),
            root,
        };
        for dir in [
            &stage.root,
            &stage.bin,
            &stage.data,
            &stage.secret,
            &stage.tmp,
            &stage.redis,
            &stage.runs,
        ] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        }
        for file in [&stage.file, &stage.secret_file] {
            std::fs::write(file, b"sandlock bench\n")
                .map_err(|e| format!("writing {}: {e}", file.display()))?;
        }
        stage.compile()?;
        Ok(stage)
    }

    fn compile(&self) -> Result<(), String> {
        let src = workspace::root().join("benches/workloads");
        let gcc = workspace::which("gcc")
            .ok_or("gcc not found: the workloads are C (apt-get install -y gcc)")?;
        for name in WORKLOADS {
            let mut cmd = Command::new(&gcc);
            cmd.args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(self.workload(name))
                .arg(src.join(format!("{name}.c")));
            let out = cmd
                .output()
                .map_err(|e| format!("{}: {e}", workspace::display(&cmd)))?;
            if !out.status.success() {
                return Err(format!(
                    "{} failed:\n{}",
                    workspace::display(&cmd),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    }

    /// The path of a compiled workload.
    pub fn workload(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// Empties a writable directory between runs (redis' dump, scratch).
    pub fn clear(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ =
                    std::fs::remove_file(e.path()).or_else(|_| std::fs::remove_dir_all(e.path()));
            }
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.runs);
    }
}
