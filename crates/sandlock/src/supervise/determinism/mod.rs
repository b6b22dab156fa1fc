//! Reproducible runs: `time_start` and `random_seed` (see
//! `docs/determinism.md`).
//!
//! - [`clock`]: the sandbox's clock (realtime = MONOTONIC + offset);
//! - [`timecalls`]: the time syscalls it answers or restarts;
//! - [`random`]: the seeded `getrandom`;
//! - [`tracer`]: the `ptrace` jobs: edits at each `execve` stop (the vDSO,
//!   `AT_RANDOM`), and restarts with edited arguments.
//!
//! Without either setting the feature is off and none of these syscalls
//! is intercepted.

mod clock;
mod random;
mod timecalls;
mod tracer;

use std::sync::{Arc, Mutex};

use sandlock_bpf::{Action, Rule};
use sandlock_notify::{BuildError, Ctx, SupervisorBuilder};
use sandlock_policy::{Policy, Timestamp};

use self::clock::SandboxClock;
use self::tracer::{Fixups, Tracer};
use super::{Feature, Shared};
use crate::chacha::Stream;
use crate::error::Error;
use crate::procmem::{self, Mem};
use crate::spawn::SpawnPlan;
use crate::vdso::{self, Config, Image, Plan, VdsoError};

/// The feature: on with `time_start` or `random_seed`.
pub(crate) fn feature(policy: &Policy) -> Result<Option<Box<dyn Feature>>, Error> {
    let (time_start, seed) = (policy.time_start(), policy.random_seed());
    if time_start.is_none() && seed.is_none() {
        return Ok(None);
    }
    if !tracer::SUPPORTED {
        return Err(Error::NotImplemented {
            setting: if time_start.is_some() {
                "time_start"
            } else {
                "random_seed"
            },
            issue: "x86-64 only so far",
        });
    }
    Ok(Some(Box::new(Determinism { time_start, seed })))
}

struct Determinism {
    time_start: Option<Timestamp>,
    seed: Option<u64>,
}

impl Feature for Determinism {
    fn name(&self) -> &'static str {
        "determinism"
    }

    fn prepare(&self, plan: &mut SpawnPlan) -> Result<(), Error> {
        plan.exec_supervised = true;
        Ok(())
    }

    fn rules(&self, _policy: &Policy, supervised: bool) -> Vec<Rule> {
        if !supervised {
            // `confine_current` refuses these settings before it asks.
            return Vec::new();
        }
        let notify = Action::UserNotif;
        let mut rules = vec![
            Rule::named("execve", notify),
            Rule::named("execveat", notify),
        ];
        if self.time_start.is_some() {
            rules.extend(timecalls::rules(notify));
        }
        if self.seed.is_some() {
            rules.extend(random::rules(notify));
        }
        rules
    }

    fn register(
        &self,
        mut sup: SupervisorBuilder,
        _shared: &Arc<Shared>,
    ) -> Result<SupervisorBuilder, BuildError> {
        // The clock starts now: at the sandbox's first notification, its
        // first execve.
        let clock = self.time_start.map(SandboxClock::starting);
        let config = Config {
            clock: clock.map(|c| c.stub()),
            time_via_kernel: false,
            hide_getrandom: self.seed.is_some(),
        };
        let plan = match vdso::read_own().and_then(Image::parse) {
            Ok(image) => Some(Arc::new(Plan::new(&image, &config))),
            // No vDSO here means none in the sandbox either: every read is
            // a system call, which the handlers answer.
            Err(VdsoError::Missing) => None,
            Err(e) => return Err(BuildError::Start(format!("determinism: {e}"))),
        };
        let fixups = Arc::new(ExecFixups {
            plan: plan.clone().filter(|p| !p.is_empty()),
            at_random: self
                .seed
                .map(|s| Mutex::new(Stream::seeded(s, random::AT_RANDOM))),
        });
        let tracer = Arc::new(Tracer::new(fixups));
        for name in ["execve", "execveat"] {
            let t = tracer.clone();
            sup = sup.handle_name(name, move |ctx: &Ctx| t.exec(ctx))?;
        }
        if let Some(clock) = clock {
            let calls = Arc::new(timecalls::TimeCalls {
                clock,
                tracer: tracer.clone(),
                plan,
            });
            sup = timecalls::register(sup, &calls)?;
        }
        if let Some(seed) = self.seed {
            sup = random::register(sup, seed)?;
        }
        Ok(sup)
    }
}

/// What is done to each new image of the sandbox at its `execve` stop.
struct ExecFixups {
    plan: Option<Arc<Plan>>,
    at_random: Option<Mutex<Stream>>,
}

impl Fixups for ExecFixups {
    fn at_exec(&self, pid: u32) -> Result<(), String> {
        let mem = Mem::open(pid).map_err(|e| format!("cannot edit a new image: {e}"))?;
        if let Some(plan) = &self.plan {
            match vdso::base_of(pid) {
                Ok(base) => plan
                    .apply(&mem, base)
                    .map_err(|e| format!("cannot patch a vDSO: {e}"))?,
                Err(VdsoError::Missing) => {}
                Err(e) => return Err(format!("cannot find a vDSO: {e}")),
            }
        }
        if let Some(stream) = &self.at_random {
            let auxv = procmem::auxv(Some(pid)).map_err(|e| format!("AT_RANDOM: {e}"))?;
            if let Some(addr) = procmem::aux_value(&auxv, procmem::AT_RANDOM) {
                let mut bytes = [0u8; 16];
                stream
                    .lock()
                    .map_err(|_| "AT_RANDOM: poisoned stream".to_owned())?
                    .fill(&mut bytes);
                mem.write_all(addr, &bytes)
                    .map_err(|e| format!("AT_RANDOM: {e}"))?;
            }
        }
        Ok(())
    }
}
