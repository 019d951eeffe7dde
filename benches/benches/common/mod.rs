//! Settings shared by the criterion benches: short runs on a noisy 2-core machine
//! (the reports, not these, check the targets), no plots, overridable from the command
//! line.

use criterion::Criterion;
use std::time::Duration;

pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
        .configure_from_args()
}
