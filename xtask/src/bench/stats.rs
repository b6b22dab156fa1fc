//! Summary statistics over a handful of samples, and ratios taken pair by pair.

use serde::{Deserialize, Serialize};

/// Median, minimum and maximum of a non-empty set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The middle value (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none or one is not finite.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// Ratios `sandboxed[i] / bare[i]` of samples taken in the same round.
///
/// Pairing cancels the machine's slow drift (other jobs on a shared host):
/// each ratio compares two runs made moments apart. Rounds where either side
/// is missing or the bare sample is not positive are skipped.
pub fn paired_ratios(bare: &[f64], sandboxed: &[f64]) -> Vec<f64> {
    bare.iter()
        .zip(sandboxed)
        .filter(|(b, s)| **b > 0.0 && b.is_finite() && s.is_finite())
        .map(|(b, s)| s / b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count_takes_the_middle() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            s,
            Summary {
                median: 3.0,
                min: 1.0,
                max: 5.0
            }
        );
    }

    #[test]
    fn even_count_averages_the_two_middles() {
        let s = Summary::of(&[4.0, 1.0, 3.0, 10.0]).unwrap();
        assert_eq!(s.median, 3.5);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 10.0);
    }

    #[test]
    fn single_sample_and_empty() {
        assert_eq!(Summary::of(&[2.0]).unwrap().median, 2.0);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn ratios_are_pairwise_not_of_medians() {
        // Drift: both sides double in round 2; the pairwise ratio stays 1.5.
        let bare = [10.0, 20.0, 10.0];
        let sandboxed = [15.0, 30.0, 15.0];
        assert_eq!(paired_ratios(&bare, &sandboxed), [1.5, 1.5, 1.5]);
    }

    #[test]
    fn ratios_skip_unusable_rounds_and_stop_at_the_shorter_side() {
        assert_eq!(paired_ratios(&[0.0, 2.0, 4.0], &[1.0, 3.0]), [1.5]);
        assert!(paired_ratios(&[], &[1.0]).is_empty());
    }
}
