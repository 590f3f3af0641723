//! The histogram bucket bounds that the `metrics` and `opentelemetry`
//! features share, so that an alert threshold set on one bound is a bound in
//! either export.

/// Histogram buckets (upper bounds, in seconds) suited to request
/// latencies and to the internal time of fast handlers: 100 µs to 10 s,
/// three per decade (1, 2.5, 5).
///
/// A quantile read from buckets is interpolated within one bucket, so it is
/// only as fine as the buckets around it: a p99 anywhere in the bucket
/// `(0.01, 0.025]` reads between 10 and 25 ms. Alert thresholds are best
/// set on a bucket bound: `p99 > 0.25` with a `0.25` bucket fires exactly
/// when more than 1% of requests took longer than 250 ms, interpolation
/// notwithstanding. Add bounds around your own thresholds if they are not
/// among these.
///
/// The same constant is `selftime::metrics::BUCKETS` (feature `metrics`) and
/// `selftime::opentelemetry::BUCKETS` (feature `opentelemetry`). Both
/// exports count a value equal to a bound in the bucket that the bound
/// closes (Prometheus's `le`, OpenTelemetry's explicit bounds).
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
