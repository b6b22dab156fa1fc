//! TOML profiles: a [`Policy`] as a flat table of its field names.
//!
//! Every key is a [`Policy`] accessor name and takes the same values as the
//! builder method of that field, in their TOML form: paths, hosts, syscalls
//! and `KEY=VALUE` environment entries as arrays of strings; ports as arrays
//! of integers; flags as booleans; limits as a number, a string in the
//! field's syntax (`max_memory = "512M"`) or `"unlimited"`; durations as
//! whole seconds or a string (`"1.5s"`, `"500ms"`); `time_start` as a string
//! or a TOML date-time. Unknown keys are an error naming the key; invalid
//! values go through the builder's validation. The policy callback is code,
//! not data: it is not part of a profile.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::time::Duration;

use toml::Value;

use crate::arg::{format_duration, parse_duration};
use crate::builder::PolicyBuilder;
use crate::error::{PolicyError, Reason};
use crate::limit::Limit;
use crate::policy::{Compat, Policy};

/// Why a profile could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The bytes are not UTF-8.
    #[error("profile is not valid UTF-8 (at byte {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not TOML.
    #[error("profile is not valid TOML (line {line}): {message}")]
    Syntax {
        /// The 1-based line of the error (0 if unknown).
        line: usize,
        /// The TOML parser's message.
        message: String,
    },
    /// A key that is not a policy field.
    #[error("unknown key {key:?} in profile")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A value of the wrong TOML type.
    #[error("{key}: expected {expected}, found {found}")]
    Type {
        /// The key.
        key: &'static str,
        /// The TOML type(s) accepted.
        expected: &'static str,
        /// The value found, as TOML.
        found: String,
    },
    /// A value the policy refuses.
    #[error(transparent)]
    Invalid(#[from] PolicyError),
}

/// Every key of a profile, in the order [`Policy::to_toml`] writes them.
pub const KEYS: [&str; 34] = [
    "fs_readable",
    "fs_writable",
    "fs_denied",
    "fs_masked",
    "deny_syscalls",
    "allow_syscalls",
    "syscall_errno",
    "net_allow_hosts",
    "net_bind",
    "net_connect",
    "no_raw_sockets",
    "no_udp",
    "isolate_ipc",
    "isolate_signals",
    "max_memory",
    "max_processes",
    "max_cpu",
    "max_open_files",
    "timeout",
    "time_start",
    "random_seed",
    "no_randomize_memory",
    "no_huge_pages",
    "no_coredump",
    "num_cpus",
    "cpu_cores",
    "hostname",
    "clean_env",
    "env",
    "workdir",
    "chroot",
    "compat",
    "callback_timeout",
    "cwd",
];

impl Policy {
    /// Reads a policy from a TOML profile.
    ///
    /// ```
    /// use sandlock_policy::Policy;
    /// let p = Policy::from_toml(r#"
    ///     fs_readable = ["/usr", "/lib"]
    ///     max_memory = "512M"
    ///     net_connect = [443]
    /// "#)?;
    /// assert_eq!(p.fs_readable().len(), 2);
    /// assert_eq!(Policy::from_toml(&p.to_toml())?, p);
    ///
    /// let err = Policy::from_toml("max_memroy = \"1G\"").unwrap_err();
    /// assert_eq!(err.to_string(), r#"unknown key "max_memroy" in profile"#);
    /// # Ok::<(), sandlock_policy::ProfileError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<Policy, ProfileError> {
        PolicyBuilder::new()
            .apply_toml(text)?
            .build()
            .map_err(ProfileError::from)
    }

    /// Reads a policy from the bytes of a TOML profile. Any input gives a
    /// policy or an error, never a panic: this is the entry point to fuzz.
    pub fn from_toml_bytes(bytes: &[u8]) -> Result<Policy, ProfileError> {
        let text = core::str::from_utf8(bytes).map_err(|e| ProfileError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Policy::from_toml(text)
    }

    /// Writes the policy as a TOML profile that [`from_toml`](Self::from_toml)
    /// reads back to an equal policy (except the callback, which is not
    /// part of a profile). Every field is written, unset optional ones
    /// excepted.
    pub fn to_toml(&self) -> String {
        let mut w = Writer(String::new());
        let strs = |items: &mut dyn Iterator<Item = String>| {
            Value::Array(items.map(Value::String).collect())
        };
        w.section("filesystem");
        w.put(
            "fs_readable",
            strs(&mut self.fs_readable.iter().map(|p| p.to_string())),
        );
        w.put(
            "fs_writable",
            strs(&mut self.fs_writable.iter().map(|p| p.to_string())),
        );
        w.put(
            "fs_denied",
            strs(&mut self.fs_denied.iter().map(|p| p.to_string())),
        );
        w.put(
            "fs_masked",
            strs(&mut self.fs_masked.iter().map(|p| p.to_string())),
        );
        w.section("syscalls");
        w.put(
            "deny_syscalls",
            strs(&mut self.deny_syscalls.iter().cloned()),
        );
        if let Some(a) = &self.allow_syscalls {
            w.put("allow_syscalls", strs(&mut a.iter().cloned()));
        }
        w.put(
            "syscall_errno",
            match self.syscall_errno.name() {
                Some(n) => Value::String(n.to_string()),
                None => Value::Integer(i64::from(self.syscall_errno.get())),
            },
        );
        w.section("network");
        w.put(
            "net_allow_hosts",
            strs(&mut self.net_allow_hosts.iter().map(|h| h.to_string())),
        );
        let ports = |ps: &[core::num::NonZeroU16]| {
            Value::Array(
                ps.iter()
                    .map(|p| Value::Integer(i64::from(p.get())))
                    .collect(),
            )
        };
        w.put("net_bind", ports(&self.net_bind));
        w.put("net_connect", ports(&self.net_connect));
        w.put("no_raw_sockets", Value::Boolean(self.no_raw_sockets));
        w.put("no_udp", Value::Boolean(self.no_udp));
        w.put("isolate_ipc", Value::Boolean(self.isolate_ipc));
        w.put("isolate_signals", Value::Boolean(self.isolate_signals));
        w.section("resources");
        w.put("max_memory", Value::String(self.max_memory.to_string()));
        w.put(
            "max_processes",
            limit_value(self.max_processes.map(|n| u64::from(n.get()))),
        );
        w.put(
            "max_cpu",
            limit_value(self.max_cpu.map(|c| u64::from(c.get()))),
        );
        w.put(
            "max_open_files",
            limit_value(self.max_open_files.map(|n| n.get())),
        );
        if let Some(t) = self.timeout {
            w.put("timeout", duration_value(t));
        }
        w.section("determinism");
        if let Some(t) = self.time_start {
            w.put("time_start", Value::String(t.to_string()));
        }
        if let Some(s) = self.random_seed {
            w.put("random_seed", u64_value(s));
        }
        w.put(
            "no_randomize_memory",
            Value::Boolean(self.no_randomize_memory),
        );
        w.put("no_huge_pages", Value::Boolean(self.no_huge_pages));
        w.put("no_coredump", Value::Boolean(self.no_coredump));
        if let Some(n) = self.num_cpus {
            w.put("num_cpus", Value::Integer(i64::from(n.get())));
        }
        if let Some(c) = &self.cpu_cores {
            w.put("cpu_cores", Value::String(c.to_string()));
        }
        if let Some(h) = &self.hostname {
            w.put("hostname", Value::String(h.to_string()));
        }
        w.section("environment");
        w.put("clean_env", Value::Boolean(self.clean_env));
        w.put("env", strs(&mut self.env.iter().map(|v| v.to_string())));
        if let Some(d) = &self.workdir {
            w.put("workdir", Value::String(d.to_string()));
        }
        if let Some(c) = &self.chroot {
            w.put("chroot", Value::String(c.to_string()));
        }
        w.section("supervision");
        w.put("compat", Value::String(self.compat.to_string()));
        w.put("callback_timeout", duration_value(self.callback_timeout));
        w.0
    }
}

/// Writes `key = value` lines under `# section` comments.
struct Writer(String);

impl Writer {
    fn section(&mut self, title: &str) {
        let sep = if self.0.is_empty() { "" } else { "\n" };
        let _ = writeln!(self.0, "{sep}# {title}");
    }

    fn put(&mut self, key: &str, value: Value) {
        let _ = writeln!(self.0, "{key} = {value}");
    }
}

impl<T> Limit<T> {
    /// Converts the amount, keeping `Unlimited`.
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Limit<U> {
        match self {
            Limit::Unlimited => Limit::Unlimited,
            Limit::Limited(v) => Limit::Limited(f(v)),
        }
    }
}

/// A limit as TOML: the number, or `"unlimited"`.
fn limit_value(l: Limit<u64>) -> Value {
    match l {
        Limit::Unlimited => Value::String("unlimited".into()),
        Limit::Limited(n) => u64_value(n),
    }
}

/// A `u64` as a TOML integer, or a string above `i64::MAX` (TOML integers are signed 64-bit).
fn u64_value(n: u64) -> Value {
    match i64::try_from(n) {
        Ok(i) => Value::Integer(i),
        Err(_) => Value::String(n.to_string()),
    }
}

/// A duration as whole seconds, or an exact string.
fn duration_value(d: Duration) -> Value {
    if d.subsec_nanos() == 0
        && let Ok(s) = i64::try_from(d.as_secs())
    {
        return Value::Integer(s);
    }
    Value::String(format_duration(d))
}

impl PolicyBuilder {
    /// Applies the settings of a TOML profile on top of this builder (lists
    /// append, single values replace). Value errors surface at
    /// [`build`](PolicyBuilder::build) like any builder error; syntax,
    /// unknown keys and wrong TOML types fail here.
    pub fn apply_toml(self, text: &str) -> Result<PolicyBuilder, ProfileError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ProfileError::Syntax {
                    line: e.span().map_or(0, |s| {
                        text.get(..s.start)
                            .map_or(0, |t| t.matches('\n').count() + 1)
                    }),
                    message: e.message().trim().to_string(),
                })?;
        self.apply_table(&table)
    }

    /// Applies a profile already parsed into a TOML table, as
    /// [`apply_toml`](Self::apply_toml) applies its text (without the
    /// parse: for a caller that read or edited the table itself).
    pub fn apply_table(self, table: &toml::Table) -> Result<PolicyBuilder, ProfileError> {
        if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(ProfileError::UnknownKey { key: k.clone() });
        }
        let mut b = self;
        for key in KEYS {
            if let Some(v) = table.get(key) {
                b = apply(b, key, v)?;
            }
        }
        Ok(b)
    }
}

/// A TOML value as it would be written, for error messages.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        let mut end = 57;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        alloc::format!("{}...", &s[..end])
    } else {
        s
    }
}

/// A wrong-type error.
fn wrong(key: &'static str, expected: &'static str, v: &Value) -> ProfileError {
    ProfileError::Type {
        key,
        expected,
        found: shown(v),
    }
}

/// The strings of an array of strings.
fn strings<'a>(key: &'static str, v: &'a Value) -> Result<Vec<&'a str>, ProfileError> {
    let expected = "an array of strings";
    let Value::Array(items) = v else {
        return Err(wrong(key, expected, v));
    };
    items
        .iter()
        .map(|i| i.as_str().ok_or_else(|| wrong(key, expected, v)))
        .collect()
}

/// A boolean.
fn boolean(key: &'static str, v: &Value) -> Result<bool, ProfileError> {
    v.as_bool().ok_or_else(|| wrong(key, "a boolean", v))
}

/// A non-negative integer that fits `T`, or an error naming the field and value.
fn int<T: TryFrom<i64>>(key: &'static str, i: i64) -> Result<T, ProfileError> {
    T::try_from(i).map_err(|_| {
        ProfileError::Invalid(PolicyError::Invalid {
            field: key,
            value: i.to_string(),
            reason: if i < 0 {
                Reason::OutOfRange {
                    min: 0,
                    max: i64::MAX as u64,
                }
            } else {
                Reason::Overflow
            },
        })
    })
}

/// A string, or the decimal text of an integer (so numbers and text share one parser).
fn text(key: &'static str, expected: &'static str, v: &Value) -> Result<String, ProfileError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        _ => Err(wrong(key, expected, v)),
    }
}

/// A duration: whole seconds, fractional seconds, or a string.
fn duration(
    key: &'static str,
    v: &Value,
) -> Result<Result<Duration, crate::ParseError>, ProfileError> {
    Ok(match v {
        Value::Integer(i) => Ok(Duration::from_secs(int::<u64>(key, *i)?)),
        Value::Float(f) => Duration::try_from_secs_f64(*f).map_err(|_| {
            crate::ParseError::new(
                f.to_string(),
                Reason::Syntax("a non-negative number of seconds"),
            )
        }),
        Value::String(s) => parse_duration(s),
        _ => return Err(wrong(key, "seconds or a duration string", v)),
    })
}

/// Applies one key.
fn apply(b: PolicyBuilder, key: &'static str, v: &Value) -> Result<PolicyBuilder, ProfileError> {
    const NUM_OR_TEXT: &str = "an integer or a string";
    Ok(match key {
        "fs_readable" => strings(key, v)?.into_iter().fold(b, PolicyBuilder::fs_read),
        "fs_writable" => strings(key, v)?
            .into_iter()
            .fold(b, PolicyBuilder::fs_write),
        "fs_denied" => strings(key, v)?.into_iter().fold(b, PolicyBuilder::fs_deny),
        "fs_masked" => strings(key, v)?.into_iter().fold(b, PolicyBuilder::fs_mask),
        "deny_syscalls" => strings(key, v)?
            .into_iter()
            .fold(b, PolicyBuilder::deny_syscall),
        "allow_syscalls" => b.allow_syscalls(strings(key, v)?),
        "syscall_errno" => b.syscall_errno(text(key, NUM_OR_TEXT, v)?),
        "net_allow_hosts" => strings(key, v)?
            .into_iter()
            .fold(b, PolicyBuilder::net_allow_host),
        "net_bind" | "net_connect" => {
            let Value::Array(items) = v else {
                return Err(wrong(key, "an array of port numbers", v));
            };
            let mut b = b;
            for i in items {
                let n = i
                    .as_integer()
                    .ok_or_else(|| wrong(key, "an array of port numbers", v))?;
                let port: u16 = int(key, n).map_err(|_| PolicyError::Invalid {
                    field: key,
                    value: n.to_string(),
                    reason: Reason::OutOfRange { min: 1, max: 65535 },
                })?;
                b = if key == "net_bind" {
                    b.net_bind(port)
                } else {
                    b.net_connect(port)
                };
            }
            b
        }
        "no_raw_sockets" => b.no_raw_sockets(boolean(key, v)?),
        "no_udp" => b.no_udp(boolean(key, v)?),
        "isolate_ipc" => b.isolate_ipc(boolean(key, v)?),
        "isolate_signals" => b.isolate_signals(boolean(key, v)?),
        "max_memory" => b.max_memory(text(key, NUM_OR_TEXT, v)?),
        "max_processes" => b.max_processes(text(key, NUM_OR_TEXT, v)?),
        "max_cpu" => b.max_cpu(text(key, NUM_OR_TEXT, v)?),
        "max_open_files" => b.max_open_files(text(key, NUM_OR_TEXT, v)?),
        "timeout" => b.timeout(duration(key, v)?),
        "callback_timeout" => b.callback_timeout(duration(key, v)?),
        "time_start" => match v {
            Value::Datetime(d) => b.time_start(d.to_string()),
            _ => b.time_start(text(key, "a date-time or a string", v)?),
        },
        "random_seed" => {
            let s = text(key, NUM_OR_TEXT, v)?;
            let seed = crate::limit::parse_u64(&s, s.trim(), "a seed in 0..=18446744073709551615")
                .map_err(|e| e.in_field(key))?;
            b.random_seed(seed)
        }
        "no_randomize_memory" => b.no_randomize_memory(boolean(key, v)?),
        "no_huge_pages" => b.no_huge_pages(boolean(key, v)?),
        "no_coredump" => b.no_coredump(boolean(key, v)?),
        "num_cpus" => b.num_cpus(text(key, NUM_OR_TEXT, v)?),
        "cpu_cores" => b.cpu_cores(text(key, "a string", v)?),
        "hostname" => b.hostname(v.as_str().ok_or_else(|| wrong(key, "a string", v))?),
        "clean_env" => b.clean_env(boolean(key, v)?),
        "env" => match v {
            Value::Table(t) => t.iter().fold(b, |b, (k, val)| match val.as_str() {
                Some(s) => b.env_var(k.as_str(), s),
                None => b.env(Err(crate::ParseError::new(
                    shown(val),
                    Reason::Syntax("a string value"),
                ))),
            }),
            _ => strings(key, v)?.into_iter().fold(b, PolicyBuilder::env),
        },
        "workdir" | "cwd" => b.workdir(v.as_str().ok_or_else(|| wrong(key, "a string", v))?),
        "chroot" => b.chroot(v.as_str().ok_or_else(|| wrong(key, "a string", v))?),
        "compat" => {
            let s = v.as_str().ok_or_else(|| wrong(key, "a string", v))?;
            b.compat(s.parse::<Compat>().map_err(|e| e.in_field(key))?)
        }
        _ => {
            return Err(ProfileError::UnknownKey {
                key: key.to_string(),
            });
        }
    })
}

#[cfg(test)]
mod tests;
