//! `getrandom` under `random_seed`: the supervisor answers with the next
//! bytes of the sandbox's seeded stream (see `crate::chacha` and
//! `docs/determinism.md` for the exact definition).
//!
//! Each source of randomness has its own stream, so that reading one does
//! not shift another: `getrandom` is stream [`GETRANDOM`], `/dev/urandom`
//! [`URANDOM`], `/dev/random` [`RANDOM`], and the 16 `AT_RANDOM` bytes of
//! each new image are taken from stream [`AT_RANDOM`]. Within a stream,
//! bytes are handed out in the order the calls reach the supervisor: a
//! single-threaded program gets the same bytes on every run.

use std::sync::{Arc, Mutex};

use sandlock_bpf::{Action, Errno, Rule};
use sandlock_notify::{BuildError, Ctx, Reply, Response, SupervisorBuilder};

use crate::chacha::Stream;
use crate::procmem::MemCache;

use super::timecalls::write_out;

/// Stream id of `getrandom`.
pub(crate) const GETRANDOM: u64 = 0;
/// Stream id of `/dev/urandom`.
pub(crate) const URANDOM: u64 = 1;
/// Stream id of `/dev/random`.
pub(crate) const RANDOM: u64 = 2;
/// Stream id of the `AT_RANDOM` bytes.
pub(crate) const AT_RANDOM: u64 = 3;

const GRND_NONBLOCK: u64 = 1;
const GRND_RANDOM: u64 = 2;
const GRND_INSECURE: u64 = 4;
/// Most bytes given by one call (the kernel gives up to 32 MiB; callers
/// loop on a short count, and the buffer is copied through ours).
const MAX_PER_CALL: usize = 1 << 20;

/// The rule: every `getrandom` goes to the supervisor.
pub(crate) fn rules(notify: Action) -> Vec<Rule> {
    vec![Rule::named("getrandom", notify)]
}

/// Registers the `getrandom` handler with the stream of `seed`.
pub(crate) fn register(
    sup: SupervisorBuilder,
    seed: u64,
    mem: Arc<MemCache>,
) -> Result<SupervisorBuilder, BuildError> {
    let stream = Arc::new(Mutex::new(Stream::seeded(seed, GETRANDOM)));
    sup.handle_name("getrandom", move |ctx: &Ctx| getrandom(&stream, &mem, ctx))
}

fn getrandom(stream: &Mutex<Stream>, mem: &MemCache, ctx: &Ctx) -> Reply {
    let [buf, len, flags, ..] = *ctx.args();
    let flags = flags & 0xffff_ffff;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE
    {
        return Reply::errno(Errno::EINVAL);
    }
    let n = usize::try_from(len).unwrap_or(usize::MAX).min(MAX_PER_CALL);
    if n == 0 {
        return Reply::Respond(Response::Value(0));
    }
    let mut bytes = vec![0u8; n];
    match stream.lock() {
        Ok(mut s) => s.fill(&mut bytes),
        Err(_) => return Reply::errno(Errno::EIO),
    }
    match write_out(mem, ctx, buf, &bytes) {
        Ok(()) => Reply::Respond(Response::Value(n as i64)),
        Err(e) => Reply::errno(e),
    }
}
