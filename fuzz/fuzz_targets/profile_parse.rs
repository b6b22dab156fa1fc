//! TOML profiles: arbitrary bytes either parse into a policy or give an
//! error, never a panic; a parsed policy survives a round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandlock_policy::Policy;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = Policy::from_toml_bytes(data) {
        let text = policy.to_toml();
        let again = Policy::from_toml(&text).expect("a written profile must parse");
        assert_eq!(again, policy, "round trip changed the policy");
        assert_eq!(again.to_toml(), text, "writing is not stable");
    }
});
